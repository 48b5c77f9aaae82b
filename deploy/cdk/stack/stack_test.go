package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"mediagw/deploy/cdk/stack"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mediagw-cdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outdir = dir
	code := awstest.Main(m)
	jsii.Close() // ends the jsii (node) process
	os.RemoveAll(dir)
	os.Exit(code)
}

// outdir is where synth writes the cloud assembly (the staged image
// context among it); TestMain removes it.
var outdir string

// repoRoot is the repository root, from deploy/cdk/stack.
var repoRoot = filepath.Join("..", "..", "..")

type synthesized struct {
	st       *stack.Stack
	template assertions.Template
	// doc is the template as JSON, for the walks over every resource.
	doc struct {
		Parameters map[string]map[string]any
		Conditions map[string]any
		Resources  map[string]resource
	}
}

type resource struct {
	Type       string
	Properties map[string]any
	Condition  string
}

// synth builds the stack once per test binary, as `cdk synth` does, with
// cdk-nag's AwsSolutions checks applied.
var synth = sync.OnceValues(func() (*synthesized, error) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	st, err := stack.New(app, "Mediagw", stack.Props{RepoRoot: repoRoot, Topology: topology.Default()})
	if err != nil {
		return nil, err
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	s := &synthesized{st: st, template: assertions.Template_FromStack(st.Stack, nil)}
	raw, err := json.Marshal(s.template.ToJSON())
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &s.doc); err != nil {
		return nil, err
	}
	return s, nil
})

func get(t *testing.T) *synthesized {
	t.Helper()
	s, err := synth()
	if err != nil {
		t.Fatalf("synth: %v", err)
	}
	return s
}

func (s *synthesized) logicalID(c awscdk.CfnElement) string { return *s.st.GetLogicalId(c) }

// ofType returns the resources of type typ, by logical id.
func (s *synthesized) ofType(typ string) map[string]resource {
	out := map[string]resource{}
	for id, r := range s.doc.Resources {
		if r.Type == typ {
			out[id] = r
		}
	}
	return out
}

// logicalIDOfType returns the logical id of the one resource of type typ.
func (s *synthesized) logicalIDOfType(typ string) string {
	for id := range s.ofType(typ) {
		return id
	}
	return ""
}

// find returns the logical id of the one resource of type typ whose
// property prop is value, or "".
func (s *synthesized) find(typ, prop string, value any) string {
	for id, r := range s.ofType(typ) {
		if fmt.Sprint(r.Properties[prop]) == fmt.Sprint(value) {
			return id
		}
	}
	return ""
}

func TestParametersHaveTheDesignsNamesAndDefaults(t *testing.T) {
	s := get(t)
	for name, def := range map[string]string{
		"GatewayName": "Hikvision", "Timezone": "8", "MachineType": "c5.xlarge", "ElasticIP": "",
		"Segment": "30", "BucketTransition": "7", "RecorderCapacity": "FARGATE",
		"SnapshotIntervalHours": "24", "SnapshotRetention": "7",
	} {
		must(t, func() { s.template.HasParameter(jsii.String(name), map[string]any{"Default": def}) })
	}
	// No default password, never echoed; inputs without a sane default have none.
	for _, name := range []string{"Password", "GatewayAmiId", "AlertEmail", "AdminCidr"} {
		p, ok := s.doc.Parameters[name]
		if !ok {
			t.Errorf("parameter %s missing", name)
			continue
		}
		if _, has := p["Default"]; has {
			t.Errorf("parameter %s has a default %v, want none", name, p["Default"])
		}
	}
	if s.doc.Parameters["Password"]["NoEcho"] != true {
		t.Errorf("Password is echoed: %v", s.doc.Parameters["Password"])
	}
	if s.doc.Parameters["GatewayAmiId"]["Type"] != "AWS::EC2::Image::Id" {
		t.Errorf("GatewayAmiId type %v", s.doc.Parameters["GatewayAmiId"]["Type"])
	}
	// Every value the template takes is validated by it.
	for name, p := range s.doc.Parameters {
		if strings.HasPrefix(name, "BootstrapVersion") || strings.HasPrefix(name, "AssetParameters") {
			continue
		}
		_, pattern := p["AllowedPattern"]
		_, values := p["AllowedValues"]
		_, minV := p["MinValue"]
		if !pattern && !values && !minV && p["Type"] == "String" {
			t.Errorf("parameter %s is not validated (no AllowedPattern, AllowedValues or range)", name)
		}
	}
}

func TestEveryTopologyResourceIsInTheStackUnderItsName(t *testing.T) {
	s := get(t)
	d := topology.Default()
	topicID := map[string]string{}
	for _, tp := range d.Topics {
		if topicID[tp.Name] = s.find("AWS::SNS::Topic", "TopicName", tp.Name); topicID[tp.Name] == "" {
			t.Errorf("topic %s missing", tp.Name)
		}
	}
	ruleID := map[string]string{}
	for _, r := range d.Rules {
		if ruleID[r.Name] = s.find("AWS::Events::Rule", "Name", r.Name); ruleID[r.Name] == "" {
			t.Errorf("rule %s missing", r.Name)
			continue
		}
		var want any
		_ = json.Unmarshal(r.Pattern, &want)
		if got := s.doc.Resources[ruleID[r.Name]].Properties["EventPattern"]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rule %s pattern %v, want topology's %v", r.Name, got, want)
		}
	}
	for _, q := range d.Queues {
		id, dlq := s.find("AWS::SQS::Queue", "QueueName", q.Name), s.find("AWS::SQS::Queue", "QueueName", q.DLQName())
		if id == "" || dlq == "" {
			t.Errorf("queue %s or its DLQ missing", q.Name)
			continue
		}
		rp, _ := s.doc.Resources[id].Properties["RedrivePolicy"].(map[string]any)
		if fmt.Sprint(rp["maxReceiveCount"]) != fmt.Sprint(q.MaxReceiveCount) || !strings.Contains(fmt.Sprint(rp["deadLetterTargetArn"]), dlq) {
			t.Errorf("queue %s redrive %v, want %d receives to %s", q.Name, rp, q.MaxReceiveCount, dlq)
		}
		for _, sub := range q.Subscriptions {
			found := false
			for _, r := range s.ofType("AWS::SNS::Subscription") {
				p := r.Properties
				if strings.Contains(fmt.Sprint(p["TopicArn"]), topicID[sub.Topic]) && strings.Contains(fmt.Sprint(p["Endpoint"]), id) {
					found = true
					if len(sub.Events) == 0 {
						// The whole topic, in its envelope (topology.json).
						if p["FilterPolicy"] != nil || p["RawMessageDelivery"] == true || p["Protocol"] != "sqs" {
							t.Errorf("subscription %s → %s: %v, want the whole topic, not raw", sub.Topic, q.Name, p)
						}
						continue
					}
					want := map[string]any{"event_type": toAny(sub.Events)}
					if fmt.Sprint(p["FilterPolicy"]) != fmt.Sprint(want) || p["RawMessageDelivery"] != true || p["Protocol"] != "sqs" {
						t.Errorf("subscription %s → %s: %v, want raw sqs delivery filtered on %v", sub.Topic, q.Name, p, want)
					}
				}
			}
			if !found {
				t.Errorf("subscription %s → %s missing", sub.Topic, q.Name)
			}
		}
		for _, rn := range q.Rules {
			targets := fmt.Sprint(s.doc.Resources[ruleID[rn]].Properties["Targets"])
			if !strings.Contains(targets, id) {
				t.Errorf("rule %s does not target %s: %s", rn, q.Name, targets)
			}
		}
	}
	for _, tb := range d.Tables {
		id := s.find("AWS::DynamoDB::Table", "TableName", tb.Name)
		if id == "" {
			t.Errorf("table %s missing", tb.Name)
			continue
		}
		keys := []any{map[string]any{"AttributeName": tb.PartitionKey, "KeyType": "HASH"}}
		if tb.SortKey != "" {
			keys = append(keys, map[string]any{"AttributeName": tb.SortKey, "KeyType": "RANGE"})
		}
		must(t, func() {
			s.template.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
				"TableName": tb.Name, "KeySchema": keys, "BillingMode": "PAY_PER_REQUEST",
				"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
				"SSESpecification":                 map[string]any{"SSEEnabled": true},
			})
		})
		if tb.TTLAttribute != "" {
			must(t, func() {
				s.template.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
					"TableName": tb.Name, "TimeToLiveSpecification": map[string]any{"AttributeName": tb.TTLAttribute, "Enabled": true},
				})
			})
		}
	}
	for _, bk := range d.Buckets {
		found := false
		for _, r := range s.ofType("AWS::S3::Bucket") {
			found = found || strings.Contains(fmt.Sprint(r.Properties["BucketName"]), bk.Name+" ")
		}
		if !found {
			t.Errorf("bucket %s missing", bk.Name)
		}
	}
	params := parameterNames(s)
	for _, p := range d.Parameters {
		name := stack.ParameterName(p.Name)
		if !slices.Contains(params, name) && !slices.Contains(stack.OperatorParameters, leaf(name)) {
			t.Errorf("parameter %s (topology's %s) missing; the stack has %v", name, p.Name, params)
		}
	}
	if s.find("AWS::ECS::Cluster", "ClusterName", d.ECS.Cluster) == "" {
		t.Errorf("cluster %s missing", d.ECS.Cluster)
	}
	td := s.find("AWS::ECS::TaskDefinition", "Family", d.ECS.RecorderTaskFamily)
	if td == "" {
		t.Fatalf("task definition %s missing", d.ECS.RecorderTaskFamily)
	}
	p := s.doc.Resources[td].Properties
	if p["Cpu"] != d.ECS.RecorderCPU || p["Memory"] != d.ECS.RecorderMemory || p["TaskRoleArn"] == nil || p["ExecutionRoleArn"] == nil {
		t.Errorf("recorder task definition: cpu %v memory %v task role %v execution role %v", p["Cpu"], p["Memory"], p["TaskRoleArn"], p["ExecutionRoleArn"])
	}
	if c := fmt.Sprint(p["ContainerDefinitions"]); !strings.Contains(c, "Name:"+d.ECS.RecorderContainer+" ") || !strings.Contains(c, "awslogs") {
		t.Errorf("recorder container %s with awslogs missing: %s", d.ECS.RecorderContainer, c)
	}
}

// must runs an assertions check, which throws (a panic through jsii) on a
// mismatch, and reports that as this test's failure instead.
func must(t *testing.T, check func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%v", r)
		}
	}()
	check()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func leaf(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// parameterNames are the SSM parameters the stack writes: plain ones as
// AWS::SSM::Parameter, SecureStrings through the custom resource.
func parameterNames(s *synthesized) []string {
	var out []string
	for _, r := range s.ofType("AWS::SSM::Parameter") {
		out = append(out, fmt.Sprint(r.Properties["Name"]))
	}
	for _, r := range s.ofType("Custom::AWS") {
		create := fmt.Sprint(r.Properties["Create"])
		if strings.Contains(create, `"putParameter"`) {
			var call struct{ Parameters struct{ Name, Type string } }
			_ = json.Unmarshal([]byte(stringOf(r.Properties["Create"])), &call)
			out = append(out, call.Parameters.Name)
		}
	}
	sort.Strings(out)
	return out
}

// stringOf flattens a Fn::Join of plain strings and tokens into one
// string (tokens as their JSON), enough to read a custom resource's call.
func stringOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			var b strings.Builder
			for _, part := range j[1].([]any) {
				if s, ok := part.(string); ok {
					b.WriteString(s)
				} else {
					b.WriteString("TOKEN")
				}
			}
			return b.String()
		}
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

func TestRecordingsBucketIsPrivateEncryptedTLSOnlyAndMovesToGlacierAfterBucketTransition(t *testing.T) {
	s := get(t)
	must(t, func() {
		s.template.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]any{
			"PublicAccessBlockConfiguration": map[string]any{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
			"BucketEncryption": assertions.Match_ObjectLike(&map[string]any{"ServerSideEncryptionConfiguration": assertions.Match_AnyValue()}),
			"LifecycleConfiguration": map[string]any{"Rules": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Status":      "Enabled",
				"Transitions": []any{map[string]any{"StorageClass": "GLACIER", "TransitionInDays": map[string]any{"Ref": "BucketTransition"}}},
			})})},
		})
	})
	must(t, func() {
		s.template.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), map[string]any{
			"PolicyDocument": assertions.Match_ObjectLike(&map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
			})})}),
		})
	})
	// Nothing in any policy opens the bucket to everyone.
	for id, r := range s.ofType("AWS::S3::BucketPolicy") {
		for _, st := range statements(r.Properties["PolicyDocument"]) {
			if st["Effect"] == "Allow" && fmt.Sprint(st["Principal"]) == "map[AWS:*]" || st["Effect"] == "Allow" && st["Principal"] == "*" {
				t.Errorf("%s allows everyone: %v", id, st)
			}
		}
	}
}

func statements(doc any) []map[string]any {
	d, _ := doc.(map[string]any)
	list, _ := d["Statement"].([]any)
	var out []map[string]any
	for _, s := range list {
		if m, ok := s.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func TestGatewayInstanceIsIMDSv2OnlyWithEncryptedEBSBehindItsElasticIP(t *testing.T) {
	s := get(t)
	must(t, func() {
		s.template.HasResourceProperties(jsii.String("AWS::EC2::LaunchTemplate"), map[string]any{
			"LaunchTemplateData": assertions.Match_ObjectLike(&map[string]any{"MetadataOptions": map[string]any{"HttpTokens": "required", "HttpEndpoint": "enabled"}}),
		})
	})
	must(t, func() {
		s.template.HasResourceProperties(jsii.String("AWS::EC2::Instance"), map[string]any{
			"ImageId":             map[string]any{"Ref": "GatewayAmiId"},
			"InstanceType":        map[string]any{"Ref": "MachineType"},
			"BlockDeviceMappings": []any{assertions.Match_ObjectLike(&map[string]any{"Ebs": assertions.Match_ObjectLike(&map[string]any{"Encrypted": true})})},
		})
	})
	must(t, func() { s.template.ResourceCountIs(jsii.String("AWS::EC2::EIPAssociation"), jsii.Number(1)) })
	// RDP only from AdminCidr; API and RTSP only from the VPC.
	for _, r := range s.ofType("AWS::EC2::SecurityGroup") {
		for _, in := range asList(r.Properties["SecurityGroupIngress"]) {
			from := fmt.Sprint(in["FromPort"])
			cidr := fmt.Sprint(in["CidrIp"])
			switch from {
			case "3389":
				if cidr != "map[Ref:AdminCidr]" {
					t.Errorf("RDP open to %s", cidr)
				}
			case "80", "443", "554":
				if !strings.Contains(cidr, "CidrBlock") {
					t.Errorf("port %s open to %s, want the VPC only", from, cidr)
				}
			case "7660", "7661":
			default:
				t.Errorf("unexpected ingress %v", in)
			}
		}
	}
}

func asList(v any) []map[string]any {
	list, _ := v.([]any)
	var out []map[string]any
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func TestServicesRunOnFargateWithCircuitBreakerHealthCheckAndLogs(t *testing.T) {
	s := get(t)
	for name := range stack.Services {
		must(t, func() {
			s.template.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
				"ServiceName":  "mediagw-" + name,
				"LaunchType":   "FARGATE",
				"DesiredCount": 1,
				"DeploymentConfiguration": assertions.Match_ObjectLike(&map[string]any{
					"DeploymentCircuitBreaker": map[string]any{"Enable": true, "Rollback": true},
				}),
			})
		})
		td := s.find("AWS::ECS::TaskDefinition", "Family", "mediagw-"+name)
		c := fmt.Sprint(s.doc.Resources[td].Properties["ContainerDefinitions"])
		if !strings.Contains(c, "/healthz") || !strings.Contains(c, "awslogs") {
			t.Errorf("%s: container without /healthz check or awslogs: %s", name, c)
		}
	}
	// Recorders run in the gateway's zone: RTSP across zones is billed.
	zone := func(subnetID string) string {
		return fmt.Sprint(s.doc.Resources[subnetID].Properties["AvailabilityZone"])
	}
	gwSubnet := fmt.Sprint(s.doc.Resources[s.logicalIDOfType("AWS::EC2::Instance")].Properties["SubnetId"].(map[string]any)["Ref"])
	tm := fmt.Sprint(s.doc.Resources[s.find("AWS::ECS::TaskDefinition", "Family", "mediagw-task-manager")].Properties["ContainerDefinitions"])
	found := false
	for id, r := range s.ofType("AWS::EC2::Subnet") {
		if strings.Contains(tm, "Name:SUBNETS Value:map[Ref:"+id+"]") {
			found = true
			if zone(id) != zone(gwSubnet) || r.Properties["MapPublicIpOnLaunch"] == true {
				t.Errorf("recorders' subnet %s is in %s, the gateway's %s in %s", id, zone(id), gwSubnet, zone(gwSubnet))
			}
		}
	}
	if !found {
		t.Errorf("the task-manager's SUBNETS is not one subnet: %s", tm)
	}
	for id, r := range s.ofType("AWS::Logs::LogGroup") {
		if r.Properties["RetentionInDays"] == nil {
			t.Errorf("log group %s keeps logs forever", id)
		}
	}
}

// TestNagAwsSolutionsFindsNothingUnsuppressed: every AwsSolutions finding
// is fixed or suppressed with its reason (cdk-nag refuses a suppression
// without one).
func TestNagAwsSolutionsFindsNothingUnsuppressed(t *testing.T) {
	s := get(t)
	ann := assertions.Annotations_FromStack(s.st.Stack)
	for kind, msgs := range map[string]*[]*cxapi.SynthesisMessage{
		"error":   ann.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))),
		"warning": ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))),
	} {
		for _, m := range *msgs {
			t.Errorf("cdk-nag %s at %s: %v", kind, *m.Id, m.Entry.Data)
		}
	}
}

// TestParameterPatternsAcceptWhatTheServicesAcceptAndNothingElse checks the
// template's own validation of the values the operator types.
func TestParameterPatternsAcceptWhatTheServicesAcceptAndNothingElse(t *testing.T) {
	s := get(t)
	for name, cases := range map[string]map[string]bool{
		"Timezone":    {"8": true, "+8": true, "-5": true, "5.5": true, "5:45": true, "14": true, "-12": true, "0": true, "15": false, "-13": false, "8h": false, "": false, "5:40": false},
		"ElasticIP":   {"": true, "eipalloc-0123456789abcdef0": true, "203.0.113.7": false},
		"AdminCidr":   {"203.0.113.7/32": true, "0.0.0.0/0": true, "203.0.113.7": false, "::/0": false},
		"AlertEmail":  {"ops@example.com": true, "ops": false, "": false},
		"GatewayName": {"Hikvision": true, "Gate way_1.a-b": true, "": false, "a;b": false},
		"MachineType": {"c5.xlarge": true, "m7i-flex.large": true, "c5": false},
		"Password":    {"Abcdef12": true, "Abcdefgh12345678": true, "short": false, "has space 123": false, "Abcdefgh123456789": false},
	} {
		pattern := regexp.MustCompile(fmt.Sprint(s.doc.Parameters[name]["AllowedPattern"]))
		for value, ok := range cases {
			if pattern.MatchString(value) != ok {
				t.Errorf("%s pattern %s: %q accepted = %v, want %v", name, pattern, value, !ok, ok)
			}
		}
	}
}
