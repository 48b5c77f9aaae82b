package stack_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

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

// TestEC2RecoveryGrantsAreScopedToTheGateway gives the health-sentinel the
// EC2 calls a recovery makes (snapshots, reboot, replacement) in a stack
// of its own, as a merged health-sentinel will, and checks where they may
// act: the gateway's tagged resources, its subnet, security group, launch
// template, AMI and Elastic IP; "*" for Describe only.
func TestEC2RecoveryGrantsAreScopedToTheGateway(t *testing.T) {
	services := maps.Clone(stack.Services)
	services["health-sentinel"] = stack.Access{
		Actions: []string{"ec2:AssociateAddress", "ec2:CreateSnapshot", "ec2:CreateTags", "ec2:DeleteSnapshot", "ec2:DescribeInstances",
			"ec2:RebootInstances", "ec2:RunInstances", "sns:Publish"},
		Topics: []string{"mediagw-alert-email"},
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	st, err := stack.New(app, "Recovery", stack.Props{RepoRoot: repoRoot, Topology: topology.Default(), Services: services})
	if err != nil {
		t.Fatal(err)
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(nil), nil)
	tmpl := assertions.Template_FromStack(st.Stack, nil)
	s := &synthesized{st: st, template: tmpl}
	raw, _ := json.Marshal(tmpl.ToJSON())
	if err := json.Unmarshal(raw, &s.doc); err != nil {
		t.Fatal(err)
	}
	var runFrom, runNew bool
	for _, stmt := range policyOf(s, st.ServiceRoles["health-sentinel"]) {
		res, cond := fmt.Sprint(stmt["Resource"]), fmt.Sprint(stmt["Condition"])
		for _, a := range actionsOf(stmt) {
			switch {
			case a == "ec2:DescribeInstances":
				if res != "*" {
					t.Errorf("%s on %s", a, res)
				}
			case a == "ec2:RunInstances" && strings.Contains(cond, "aws:RequestTag/mediagw:gateway"):
				runNew = true
			case a == "ec2:RunInstances":
				runFrom = strings.Contains(res, "subnet/") && strings.Contains(res, "security-group/") &&
					strings.Contains(res, "launch-template/") && strings.Contains(res, "GatewayAmiId")
			case a == "ec2:RebootInstances" || a == "ec2:CreateSnapshot" || a == "ec2:DeleteSnapshot":
				if !strings.Contains(cond, "aws:ResourceTag/mediagw:gateway") {
					t.Errorf("%s on %s without the gateway's tag: %s", a, res, cond)
				}
			case a == "ec2:CreateTags":
				if !strings.Contains(cond, "ec2:CreateAction") {
					t.Errorf("%s not limited to creation: %s", a, cond)
				}
			case a == "ec2:AssociateAddress":
				if !strings.Contains(res, "elastic-ip/") {
					t.Errorf("%s on %s", a, res)
				}
			case a == "sns:Publish":
				if !strings.Contains(res, s.find("AWS::SNS::Topic", "TopicName", "mediagw-alert-email")) {
					t.Errorf("%s on %s", a, res)
				}
			}
		}
	}
	if !runNew || !runFrom {
		t.Errorf("RunInstances: tagged new resources %v, from the gateway's subnet, group, template and AMI %v", runNew, runFrom)
	}
	ann := assertions.Annotations_FromStack(st.Stack)
	for _, m := range *ann.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
		t.Errorf("cdk-nag error at %s: %v", *m.Id, m.Entry.Data)
	}
	// Without a case in ec2Scope, an EC2 call is refused, not granted on "*".
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
