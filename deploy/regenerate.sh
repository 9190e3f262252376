#!/bin/sh
# Writes again every file under deploy/ that is made from the journeys. Run it from the
# repository's root after changing journeys/ or the rules generator; tests/test_deploy.py
# runs the same `journeyman` commands and fails until the files here match them.
set -eu
cd "$(dirname "$0")/.."
JOURNEYMAN=${JOURNEYMAN:-journeyman}

# Kubernetes: kustomize reads only files inside the kustomization's folder, so the base
# carries a copy of the journeys (list new files in its configMapGenerator too).
rm -f deploy/kubernetes/base/journeys/*.yaml
cp journeys/*.yaml deploy/kubernetes/base/journeys/
$JOURNEYMAN rules deploy/kubernetes/base/journeys --format prometheus-operator --locations 3 -o deploy/kubernetes/rules/prometheusrule.yaml

# Compose: one location, and the Grafana dashboard it provisions.
$JOURNEYMAN rules journeys -o deploy/compose/prometheus/rules.yml
$JOURNEYMAN dashboard journeys -o deploy/compose/grafana/dashboards/journeyman.json
