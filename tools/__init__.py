"""Developer tools that measure the platform (benches, load test); none of it is deployed."""
