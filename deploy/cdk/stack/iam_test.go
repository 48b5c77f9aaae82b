package stack_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"mediagw/deploy/cdk/codescan"
	"mediagw/deploy/cdk/stack"
	"mediagw/pkg/topology"
)

// notDeployed are binaries of services/*/cmd/ that run nowhere in AWS.
var notDeployed = map[string]string{
	"gateway-sim": "the gateway simulator, for development and tests",
	"mediagw-ctl": "the operator's CLI, run with the operator's own credentials",
}

// TestRolesMatchCode derives each deployed binary's AWS calls from its
// code and checks that the access table (access.go), and so the role the
// stack gives it, allows exactly those actions on the resources the code
// declares. A new SDK call anywhere in a service (or a package it links)
// fails here until its role allows it; a grant the code no longer needs
// fails too.
func TestRolesMatchCode(t *testing.T) {
	cmds, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "cmd", "*"))
	if err != nil || len(cmds) == 0 {
		t.Fatalf("no services/*/cmd/* under %s: %v", repoRoot, err)
	}
	seen := map[string]bool{}
	for _, dir := range cmds {
		name := filepath.Base(dir)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || notDeployed[name] != "" {
			continue
		}
		seen[name] = true
		want, ok := stack.Services[name]
		if name == "recorder" {
			want, ok = stack.Recorder, true
		}
		if !ok {
			t.Errorf("services/%s/cmd/%s is neither in stack.Services nor in notDeployed: give it a role", filepath.Base(filepath.Dir(filepath.Dir(dir))), name)
			continue
		}
		pkg := "mediagw/" + filepath.ToSlash(strings.TrimPrefix(dir, repoRoot+string(filepath.Separator)))
		got, err := codescan.Scan(repoRoot, pkg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.ActionList(), sorted(want.Actions)) {
			var where []string
			for _, a := range got.ActionList() {
				if !slices.Contains(want.Actions, a) {
					where = append(where, fmt.Sprintf("%s (called at %s)", a, got.Actions[a][0]))
				}
			}
			for _, a := range want.Actions {
				if got.Actions[a] == nil {
					where = append(where, a+" (granted, called nowhere)")
				}
			}
			t.Errorf("%s: its code calls %q, access.go grants %q; differences: %s", name, got.ActionList(), sorted(want.Actions), strings.Join(where, "; "))
		}
		for kind, list := range map[string][]string{"Table": want.Tables, "Queue": want.Queues, "Topic": want.Topics, "Bucket": want.Buckets} {
			code := got.Resources[kind]
			if name == "recorder" && kind == "Bucket" {
				code = want.Buckets // handed over by the task-manager (RECORDER_BUCKET), see access.go
			}
			if !slices.Equal(code, sorted(list)) {
				t.Errorf("%s: its code declares %ss %q, access.go %q", name, kind, code, sorted(list))
			}
		}
	}
	for name := range stack.Services {
		if !seen[name] {
			t.Errorf("stack.Services has %s, which is no binary of services/*/cmd/", name)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// policyOf returns the statements attached to role in the template.
func policyOf(s *synthesized, role awsiam.Role) []map[string]any {
	id := s.logicalID(role.Node().DefaultChild().(awscdk.CfnElement))
	var out []map[string]any
	for _, r := range s.ofType("AWS::IAM::Policy") {
		if strings.Contains(fmt.Sprint(r.Properties["Roles"]), "Ref:"+id+"]") {
			out = append(out, statements(r.Properties["PolicyDocument"])...)
		}
	}
	return out
}

func actionsOf(st map[string]any) []string {
	switch a := st["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// TestEachRoleInTheTemplateHasExactlyItsActions checks the synthesized
// roles, not the table: what CloudFormation will create.
func TestEachRoleInTheTemplateHasExactlyItsActions(t *testing.T) {
	s := get(t)
	check := func(name string, role awsiam.Role, acc stack.Access) {
		var got []string
		for _, st := range policyOf(s, role) {
			for _, a := range actionsOf(st) {
				if !slices.Contains(got, a) {
					got = append(got, a)
				}
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, sorted(acc.Actions)) {
			t.Errorf("role of %s allows %q, want %q", name, got, sorted(acc.Actions))
		}
	}
	for name, acc := range stack.Services {
		check(name, s.st.ServiceRoles[name], acc)
	}
	check("recorder", s.st.RecorderRole, stack.Recorder)

	// The login budget is shared: configurator, device-watcher and recorder read and write it.
	budget := s.find("AWS::DynamoDB::Table", "TableName", "mediagw-login-budget")
	for name, role := range map[string]awsiam.Role{"configurator": s.st.ServiceRoles["configurator"], "device-watcher": s.st.ServiceRoles["device-watcher"], "recorder": s.st.RecorderRole} {
		ok := false
		for _, st := range policyOf(s, role) {
			ok = ok || slices.Contains(actionsOf(st), "dynamodb:PutItem") && strings.Contains(fmt.Sprint(st["Resource"]), budget)
		}
		if !ok {
			t.Errorf("%s may not write the login budget", name)
		}
	}
	// The configurator writes PendingConfiguration and PendingReboot, and nothing else.
	for _, st := range policyOf(s, s.st.ServiceRoles["configurator"]) {
		if slices.Contains(actionsOf(st), "ssm:PutParameter") {
			res := fmt.Sprint(st["Resource"])
			if !strings.Contains(res, "/PendingConfiguration") || !strings.Contains(res, "/PendingReboot") || strings.Contains(res, "/Password") {
				t.Errorf("configurator's SSM writes reach %s", res)
			}
		}
	}
}

// allowedStar are the actions AWS authorizes on no resource (Service
// Authorization Reference), the only ones allowed on "*" (with EC2's
// Describe actions).
var allowedStar = []string{
	"ssm:DescribeParameters",    // no resource types
	"ecs:ListTasks",             // container-instance only; conditioned on the cluster
	"ecr:GetAuthorizationToken", // no resource types (execution roles)
	"ec2:DescribeAddresses",     // no resource types (the Elastic IP's address)
}

// TestNoWildcardActionAndStarResourceOnlyWhereAWSRequiresIt covers every
// policy in the template, CDK's own included.
func TestNoWildcardActionAndStarResourceOnlyWhereAWSRequiresIt(t *testing.T) {
	s := get(t)
	for id, r := range s.ofType("AWS::IAM::Policy") {
		for _, st := range statements(r.Properties["PolicyDocument"]) {
			for _, a := range actionsOf(st) {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %s", id, a)
				}
			}
			if res := st["Resource"]; res == "*" {
				for _, a := range actionsOf(st) {
					if !slices.Contains(allowedStar, a) && !strings.HasPrefix(a, "ec2:Describe") {
						t.Errorf("%s: %s on \"*\"", id, a)
					}
				}
			}
		}
	}
}

// TestEC2RecoveryGrantsAreScopedToTheGateway checks where the
// health-sentinel's EC2 calls (recovery and snapshots) may act: existing
// instances and AMIs only with the gateway's tag, new ones only created
// with it, a replacement only in the gateway's subnet and security group
// from one of its AMIs, the Elastic IP only the gateway's; "*" for
// Describe only; no iam:PassRole (the gateway has no instance profile).
func TestEC2RecoveryGrantsAreScopedToTheGateway(t *testing.T) {
	s := get(t)
	subnet := referenced(s.doc.Resources[s.logicalIDOfType("AWS::EC2::Instance")].Properties["SubnetId"])[0]
	sg := s.find("AWS::EC2::SecurityGroup", "GroupDescription", "mediagw gateway: API and RTSP from the VPC, ISUP from cameras, RDP from AdminCidr")
	eip := gatewayEIP(t, s)
	const tag = "ec2:ResourceTag/" + stack.GatewayTag + ":" + stack.GatewayID
	const requestTag = "aws:RequestTag/" + stack.GatewayTag + ":" + stack.GatewayID
	seen := map[string]bool{}
	for _, stmt := range policyOf(s, s.st.ServiceRoles["health-sentinel"]) {
		res, cond := fmt.Sprint(stmt["Resource"]), fmt.Sprint(stmt["Condition"])
		kinds := 0
		for _, k := range []string{"instance/", "image/", "snapshot/", "volume/", "subnet/", "security-group/", "elastic-ip/", "network-interface/", "launch-template/"} {
			if strings.Contains(res, k) {
				kinds++
			}
		}
		for _, a := range actionsOf(stmt) {
			if !strings.HasPrefix(a, "ec2:") && a != "iam:PassRole" {
				continue
			}
			key := func(k string) string { seen[a+" "+k] = true; return k }
			switch {
			case a == "iam:PassRole":
				t.Errorf("the sentinel may pass roles: %v", stmt)
			case res == "*":
				if !strings.HasPrefix(a, "ec2:Describe") {
					t.Errorf("%s on \"*\"", a)
				}
			case strings.HasPrefix(a, "ec2:Describe"):
				t.Errorf("%s on %s: Describe has no resources", a, res)
			case a == "ec2:CreateTags":
				if !strings.Contains(cond, "ec2:CreateAction") || !strings.Contains(cond, requestTag) {
					t.Errorf("%s not limited to tagging as it creates: %s", a, cond)
				}
				key("tags")
			case strings.Contains(res, "instance/") && (a == "ec2:RunInstances"):
				if !strings.Contains(cond, requestTag) {
					t.Errorf("%s on new instances without the gateway's tag: %s", a, cond)
				}
				key("instance")
			case strings.Contains(res, "instance/"):
				if !strings.Contains(cond, tag) {
					t.Errorf("%s on instances without the gateway's tag: %s", a, cond)
				}
				key("instance")
			case strings.Contains(res, "image/") && a == "ec2:CreateImage":
				if !strings.Contains(cond, requestTag) {
					t.Errorf("%s makes AMIs without the gateway's tag: %s", a, cond)
				}
				key("image")
			case strings.Contains(res, "image/"):
				if !strings.Contains(cond, tag) {
					t.Errorf("%s on AMIs not the gateway's: %s", a, cond)
				}
				key("image")
			case strings.Contains(res, "subnet/") || strings.Contains(res, "security-group/"):
				if a != "ec2:RunInstances" || !strings.Contains(res, subnet) || !strings.Contains(res, sg) {
					t.Errorf("%s on %s, want the gateway's subnet %s and group %s", a, res, subnet, sg)
				}
				key("network")
			case strings.Contains(res, "elastic-ip/"):
				if a != "ec2:AssociateAddress" || !strings.Contains(res, eip) || !strings.Contains(res, "ElasticIP") {
					t.Errorf("%s on %s, want the gateway's Elastic IP", a, res)
				}
				key("address")
			case strings.Contains(res, "snapshot/"):
				if a != "ec2:CreateImage" && a != "ec2:DeleteSnapshot" {
					t.Errorf("%s on snapshots", a)
				}
				key("snapshot")
			case strings.Contains(res, "volume/") || strings.Contains(res, "network-interface/"):
				if a != "ec2:RunInstances" {
					t.Errorf("%s on %s", a, res)
				}
				key("parts")
			default:
				t.Errorf("%s on %s: not a resource of the gateway's recovery", a, res)
			}
			if stmt["Condition"] != nil && kinds != 1 && a != "ec2:CreateTags" {
				t.Errorf("%s: one statement mixes resource types under one condition: %s", a, res)
			}
		}
	}
	for _, want := range []string{"ec2:RebootInstances instance", "ec2:TerminateInstances instance", "ec2:CreateImage instance", "ec2:CreateImage image",
		"ec2:CreateImage snapshot", "ec2:DeregisterImage image", "ec2:DeleteSnapshot snapshot", "ec2:CreateTags tags",
		"ec2:RunInstances instance", "ec2:RunInstances image", "ec2:RunInstances network", "ec2:RunInstances parts",
		"ec2:AssociateAddress instance", "ec2:AssociateAddress address"} {
		if !seen[want] {
			t.Errorf("no statement for %s", want)
		}
	}
	// The one email subscription it may make is AlertEmail's.
	sub := false
	for _, stmt := range policyOf(s, s.st.ServiceRoles["health-sentinel"]) {
		if slices.Contains(actionsOf(stmt), "sns:Subscribe") {
			sub = true
			if c := fmt.Sprint(stmt["Condition"]); !strings.Contains(c, "sns:Endpoint:map[Ref:AlertEmail]") || !strings.Contains(c, "sns:Protocol:email") {
				t.Errorf("sns:Subscribe beyond AlertEmail: %s", c)
			}
		}
	}
	if !sub {
		t.Error("no sns:Subscribe statement")
	}
	// Without a case in ec2Scope, an EC2 call is refused, not granted on "*".
	services := maps.Clone(stack.Services)
	services["health-sentinel"] = stack.Access{Actions: []string{"ec2:ImportImage"}}
	if _, err := stack.New(awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())}), "Refused", stack.Props{RepoRoot: repoRoot, Topology: topology.Default(), Services: services}); err == nil || !strings.Contains(err.Error(), "ec2:ImportImage") {
		t.Errorf("an unscoped EC2 action: %v", err)
	}
}

// TestEachRoleReachesExactlyItsOwnTablesQueuesAndTopics checks the
// resources of each role's DynamoDB, SQS and SNS statements against what
// its code declares (access.go): no other service's table, queue or topic.
func TestEachRoleReachesExactlyItsOwnTablesQueuesAndTopics(t *testing.T) {
	s := get(t)
	check := func(name string, role awsiam.Role, acc stack.Access) {
		want := map[string][]string{}
		for _, tb := range acc.Tables {
			want["dynamodb"] = append(want["dynamodb"], s.find("AWS::DynamoDB::Table", "TableName", tb))
		}
		for _, q := range acc.Queues {
			want["sqs"] = append(want["sqs"], s.find("AWS::SQS::Queue", "QueueName", q), s.find("AWS::SQS::Queue", "QueueName", q+"-dlq"))
		}
		for _, tp := range acc.Topics {
			want["sns"] = append(want["sns"], s.find("AWS::SNS::Topic", "TopicName", tp))
		}
		got := map[string][]string{}
		for _, st := range policyOf(s, role) {
			for _, a := range actionsOf(st) {
				prefix, _, _ := strings.Cut(a, ":")
				if prefix != "dynamodb" && prefix != "sqs" && prefix != "sns" {
					continue
				}
				for _, id := range referenced(st["Resource"]) {
					if !slices.Contains(got[prefix], id) {
						got[prefix] = append(got[prefix], id)
					}
				}
			}
		}
		for _, prefix := range []string{"dynamodb", "sqs", "sns"} {
			if g, w := sorted(got[prefix]), sorted(want[prefix]); !slices.Equal(g, w) {
				t.Errorf("%s: %s statements reach %q, want %q", name, prefix, g, w)
			}
		}
	}
	for name, acc := range stack.Services {
		check(name, s.st.ServiceRoles[name], acc)
	}
	check("recorder", s.st.RecorderRole, stack.Recorder)
}

// referenced returns the logical ids a policy's Resource refers to (Ref or
// Fn::GetAtt), anywhere inside it.
func referenced(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, referenced(e)...)
		}
	case map[string]any:
		if id, ok := x["Ref"].(string); ok && !strings.HasPrefix(id, "AWS::") {
			out = append(out, id)
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok {
			out = append(out, fmt.Sprint(ga[0]))
		}
		for k, e := range x {
			if k != "Ref" && k != "Fn::GetAtt" {
				out = append(out, referenced(e)...)
			}
		}
	}
	return out
}
