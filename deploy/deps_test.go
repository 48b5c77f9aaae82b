package deploy

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCommandsLinkOnlyWhatTheyUse checks the boundary the layout promises:
// a service's command links the AWS clients that service calls and no
// other, and no binary but the simulator's links the simulator, its RTP
// and SDP libraries, YAML or the test helpers — except the RTP packet
// library the recorder depacketizes with when it records in process.
func TestCommandsLinkOnlyWhatTheyUse(t *testing.T) {
	mayLink := map[string][]string{
		"services/recorder/cmd/recorder": {"github.com/pion/rtp", "github.com/pion/randutil"},
	}
	for cmd, wantAWS := range map[string][]string{
		"services/configurator/cmd/configurator":       {"dynamodb", "sns", "sqs", "ssm"},
		"services/device-watcher/cmd/device-watcher":   {"dynamodb", "sns", "sqs", "ssm"},
		"services/task-manager/cmd/task-manager":       {"dynamodb", "ecs", "eventbridge", "sns", "sqs"},
		"services/task-manager/cmd/mediagw-ctl":        {"dynamodb", "s3", "sqs", "ssm"},
		"services/recorder/cmd/recorder":               {"dynamodb", "s3", "ssm"},
		"services/health-sentinel/cmd/health-sentinel": {"dynamodb", "ec2", "s3", "sns", "sqs", "ssm"},
		"deploy/cmd/provision":                         {"dynamodb", "ecs", "eventbridge", "s3", "sns", "sqs", "ssm"},
	} {
		t.Run(filepath.Base(cmd), func(t *testing.T) {
			list := exec.Command("go", "list", "-deps", "./"+cmd)
			list.Dir = ".." // the workspace root
			out, err := list.CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps ./%s: %v\n%s", cmd, err, out)
			}
			var gotAWS []string
			for _, pkg := range strings.Fields(string(out)) {
				if svc, ok := strings.CutPrefix(pkg, "github.com/aws/aws-sdk-go-v2/service/"); ok && !strings.Contains(svc, "/") {
					// The SDK's own credential chain (sso, ssooidc, sts, signin) is in every binary.
					if !slices.Contains([]string{"sso", "ssooidc", "sts", "signin"}, svc) {
						gotAWS = append(gotAWS, svc)
					}
				}
				allowed := slices.ContainsFunc(mayLink[cmd], func(p string) bool { return pkg == p || strings.HasPrefix(pkg, p+"/") })
				for _, banned := range []string{"github.com/pion/", "yaml", "mediagw/testsupport"} {
					if strings.Contains(pkg, banned) && !allowed {
						t.Errorf("links %s", pkg)
					}
				}
			}
			slices.Sort(gotAWS)
			if !slices.Equal(gotAWS, wantAWS) {
				t.Errorf("AWS clients linked: %v, want %v", gotAWS, wantAWS)
			}
		})
	}
}
