package stack_test

import (
	"fmt"
	"strings"
	"testing"

	"mediagw/deploy/cdk/stack"
)

// TestHealthSentinelLooksAfterTheStacksGateway checks what ties the
// sentinel to the deployed gateway: the tag it finds the instance and the
// Elastic IP by, the gateway it is told about (the id the SSM parameters
// are under, the instance's private address), the snapshot schedule from
// SnapshotIntervalHours and SnapshotRetention instead of DLM, and the
// alert address it subscribes itself (the stack subscribes none).
func TestHealthSentinelLooksAfterTheStacksGateway(t *testing.T) {
	s := get(t)
	tag := fmt.Sprint(map[string]any{"Key": stack.GatewayTag, "Value": stack.GatewayID})
	for _, id := range []string{s.logicalIDOfType("AWS::EC2::Instance"), gatewayEIP(t, s)} {
		if tags := fmt.Sprint(s.doc.Resources[id].Properties["Tags"]); !strings.Contains(tags, tag) {
			t.Errorf("%s tags %s, want %s", id, tags, tag)
		}
	}
	// An existing allocation (ElasticIP) is tagged by a custom resource.
	tagged := false
	for _, r := range s.ofType("Custom::AWS") {
		create := fmt.Sprint(r.Properties["Create"])
		tagged = tagged || strings.Contains(create, `createTags`) && strings.Contains(create, stack.GatewayTag) && strings.Contains(create, "ElasticIP")
	}
	if !tagged {
		t.Error("no custom resource tags the Elastic IP (an existing allocation) with the gateway's tag")
	}
	if n := len(s.ofType("AWS::DLM::LifecyclePolicy")); n != 0 {
		t.Errorf("%d DLM policies: the sentinel takes the snapshots", n)
	}
	if n := len(s.ofType("AWS::SNS::Subscription")); n == 0 {
		t.Fatal("no subscriptions at all")
	}
	for id, r := range s.ofType("AWS::SNS::Subscription") {
		if r.Properties["Protocol"] == "email" {
			t.Errorf("%s: an email subscription owned by the stack; the sentinel owns AlertEmail's", id)
		}
	}

	td := s.find("AWS::ECS::TaskDefinition", "Family", "mediagw-health-sentinel")
	env := map[string]string{}
	for _, kv := range asList(asList(s.doc.Resources[td].Properties["ContainerDefinitions"])[0]["Environment"]) {
		env[fmt.Sprint(kv["Name"])] = s.resolve(t, kv["Value"])
	}
	for k, want := range map[string]string{
		"GATEWAYS":                   stack.GatewayID + "=http://10.40.0.10",
		"PARAMETER_ROOT":             "/mediagw",
		"ALERT_EMAIL":                sampleParameters["AlertEmail"],
		"SNAPSHOT_RPO":               "24h",
		"SNAPSHOTS_KEEP":             "7",
		"SNAPSHOTS_MAX_AGE":          "0s",
		"RECORDER_LOG_STREAM_PREFIX": "recorder",
		"INCIDENTS_TABLE":            "mediagw-incidents",
		"LEASES_TABLE":               "mediagw-leases",
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	if !strings.HasPrefix(stack.ParameterName("/mediagw/gateways/x/Password"), "/mediagw/gateways/"+stack.GatewayID+"/") {
		t.Errorf("the gateway's parameters are not under its id %s", stack.GatewayID)
	}
	// The recorder's log streams are named as the sentinel's mails say.
	rec := s.find("AWS::ECS::TaskDefinition", "Family", "mediagw-recorder")
	if lc := fmt.Sprint(asList(s.doc.Resources[rec].Properties["ContainerDefinitions"])[0]["LogConfiguration"]); !strings.Contains(lc, "awslogs-stream-prefix:recorder") {
		t.Errorf("recorder logs %s, want stream prefix recorder", lc)
	}
}

// gatewayEIP is the logical id of the gateway's Elastic IP (the NAT
// gateway has one too).
func gatewayEIP(t *testing.T, s *synthesized) string {
	t.Helper()
	for id := range s.ofType("AWS::EC2::EIP") {
		if strings.HasPrefix(id, "GatewayEIP") {
			return id
		}
	}
	t.Fatal("no GatewayEIP")
	return ""
}
