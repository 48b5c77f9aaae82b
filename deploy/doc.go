// Package deploy holds what puts mediagw into AWS or onto a developer's
// machine: the provisioning command (cmd/provision), the container image
// (Dockerfile) and the docker-compose checks.
package deploy
