module mediagw/services/gateway-sim

go 1.26.0

require (
	mediagw/pkg v0.0.0 // indirect
	mediagw/testsupport v0.0.0-00010101000000-000000000000
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/icholy/digest v1.2.0 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/rtp v1.10.6 // indirect
	github.com/pion/sdp/v3 v3.0.20 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	gotest.tools/v3 v3.5.2 // indirect
)

replace mediagw/pkg => ../../pkg

replace mediagw/testsupport => ../../testsupport

replace mediagw/deploy/provision => ../../deploy/provision
