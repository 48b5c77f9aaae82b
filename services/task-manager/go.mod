module mediagw/services/task-manager

go 1.26.0

require mediagw/pkg v0.0.0

replace mediagw/pkg => ../../pkg
