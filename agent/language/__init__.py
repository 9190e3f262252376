"""The journey language: files to typed, validated models. Imports no runtime library."""
