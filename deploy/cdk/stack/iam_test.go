package stack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"

	"mediagw/deploy/cdk/codescan"
	"mediagw/deploy/cdk/stack"
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
// Authorization Reference), the only ones allowed on "*".
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
					if !slices.Contains(allowedStar, a) {
						t.Errorf("%s: %s on \"*\"", id, a)
					}
				}
			}
		}
	}
}
