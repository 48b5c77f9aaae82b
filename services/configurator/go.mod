module mediagw/services/configurator

go 1.26.0

require mediagw/pkg v0.0.0

replace mediagw/pkg => ../../pkg
