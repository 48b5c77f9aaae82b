// Package e2e holds the end-to-end tests of mediagw: the real binaries
// (gateway simulator, device-watcher, task-manager with local recorders)
// started as processes against a private set of emulator resources, driven
// through the simulator's admin API and checked in S3, DynamoDB and the
// process table. It has no code outside its tests.
package e2e
