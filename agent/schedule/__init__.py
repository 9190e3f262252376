"""When journeys run: the scheduler, sharding across replicas, reloading files."""
