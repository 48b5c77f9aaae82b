module mediagw/services/gateway-sim

go 1.26.0

require mediagw/pkg v0.0.0

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/icholy/digest v1.2.0 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/rtp v1.10.6 // indirect
	github.com/pion/sdp/v3 v3.0.20 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace mediagw/pkg => ../../pkg
