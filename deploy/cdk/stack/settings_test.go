package stack_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"mediagw/deploy/cdk/stack"
)

// TestServicesAcceptTheEnvironmentTheStackGivesThem runs each service's
// binary, built from this tree, with exactly the environment its task
// definition sets (references resolved to values of their shape) and
// --check-settings: the binary must accept it, validating as a start does,
// and read every variable the stack sets (one it ignores is a mistake
// waiting to be believed).
func TestServicesAcceptTheEnvironmentTheStackGivesThem(t *testing.T) {
	s := get(t)
	var names []string
	for name := range stack.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./services/"+n+"/cmd/"+n)
	}
	build := exec.Command("go", args...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			td := s.find("AWS::ECS::TaskDefinition", "Family", "mediagw-"+name)
			containers := asList(s.doc.Resources[td].Properties["ContainerDefinitions"])
			if len(containers) != 1 {
				t.Fatalf("%d containers", len(containers))
			}
			env := []string{"AWS_REGION=us-east-1"}
			var set []string
			for _, kv := range asList(containers[0]["Environment"]) {
				k := fmt.Sprint(kv["Name"])
				env = append(env, k+"="+s.resolve(t, kv["Value"]))
				set = append(set, k)
			}
			cmd := exec.Command(filepath.Join(bin, name), "--check-settings")
			cmd.Env = env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s refuses the stack's settings: %v: %s\nenvironment: %q", name, err, stderr.String(), env)
			}
			read := map[string]bool{}
			for _, v := range strings.Fields(stdout.String()) {
				read[v] = true
			}
			for _, k := range set {
				if !read[k] {
					t.Errorf("the stack sets %s, which %s does not read", k, name)
				}
			}
		})
	}
}

// sampleParameters are values of the parameters without a default, as an
// operator gives them.
var sampleParameters = map[string]string{"AlertEmail": "ops@example.com"}

// resolve turns a template value into one of the shape it will have in
// AWS: a parameter's default, a resource's name, URL or ARN.
func (s *synthesized) resolve(t *testing.T, v any) string {
	t.Helper()
	const account, region = "123456789012", "us-east-1"
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if join, ok := x["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range join[1].([]any) {
				parts = append(parts, s.resolve(t, p))
			}
			return strings.Join(parts, fmt.Sprint(join[0]))
		}
		id := ""
		if ref, ok := x["Ref"].(string); ok {
			if p, isParam := s.doc.Parameters[ref]; isParam {
				if d, ok := p["Default"]; ok {
					return fmt.Sprint(d)
				}
				if v, ok := sampleParameters[ref]; ok {
					return v
				}
				t.Fatalf("parameter %s has no default and no sample value", ref)
			}
			id = ref
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok {
			id = fmt.Sprint(ga[0])
		}
		r, ok := s.doc.Resources[id]
		if !ok {
			break
		}
		p := r.Properties
		switch r.Type {
		case "AWS::SQS::Queue":
			return "https://sqs." + region + ".amazonaws.com/" + account + "/" + fmt.Sprint(p["QueueName"])
		case "AWS::SNS::Topic":
			return "arn:aws:sns:" + region + ":" + account + ":" + fmt.Sprint(p["TopicName"])
		case "AWS::DynamoDB::Table":
			return fmt.Sprint(p["TableName"])
		case "AWS::S3::Bucket":
			return "mediagw-recordings-" + account + "-" + region
		case "AWS::ECS::Cluster":
			return fmt.Sprint(p["ClusterName"])
		case "AWS::ECS::TaskDefinition":
			return "arn:aws:ecs:" + region + ":" + account + ":task-definition/" + fmt.Sprint(p["Family"]) + ":1"
		case "AWS::EC2::Subnet":
			return "subnet-0123456789abcdef0"
		case "AWS::EC2::SecurityGroup":
			return "sg-0123456789abcdef0"
		case "AWS::EC2::Instance":
			if ga, ok := x["Fn::GetAtt"].([]any); ok && fmt.Sprint(ga[1]) == "PrivateIp" {
				return "10.40.0.10"
			}
		}
	}
	t.Fatalf("no value for %v", v)
	return ""
}
