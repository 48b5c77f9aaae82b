package stack_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/deploy/cdk/stack"
	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
)

// stackOnly are resources the stack creates that the local provisioner
// leaves to something else, with the reason.
var stackOnly = map[string]string{
	"AWS::ECS::TaskDefinition mediagw-configurator":    "locally the services run as processes (make run)",
	"AWS::ECS::TaskDefinition mediagw-device-watcher":  "locally the services run as processes (make run)",
	"AWS::ECS::TaskDefinition mediagw-task-manager":    "locally the services run as processes (make run)",
	"AWS::ECS::TaskDefinition mediagw-health-sentinel": "locally the services run as processes (make run)",
}

// TestProvisionerAndStackCreateTheSameResources applies the local
// provisioner (deploy/provision) to the emulator, lists what it created,
// and compares it by type and name with what the stack declares: the two
// paths to AWS resources may not drift apart.
func TestProvisionerAndStackCreateTheSameResources(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	prefix := awstest.Name("cdk") + "-"
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: prefix, LocalParameters: true})
	if err != nil {
		t.Fatal(err)
	}
	local := provisioned(ctx, t, cfg, prefix, res)
	fromStack := declared(get(t))
	var missing, extra []string
	for _, r := range local {
		if !slices.Contains(fromStack, r) && !slices.Contains(stack.OperatorParameters, leaf(r)) {
			missing = append(missing, r)
		}
	}
	for _, r := range fromStack {
		if !slices.Contains(local, r) && stackOnly[r] == "" {
			extra = append(extra, r)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("the provisioner creates, the stack does not: %q\nthe stack creates, the provisioner does not: %q", missing, extra)
	}
	t.Logf("provisioned: %q", local)
	if len(local) < 20 {
		t.Errorf("the provisioner created only %q", local)
	}
}

// provisioned lists, in the emulator, every resource under prefix, as
// "<CloudFormation type> <name without the prefix>".
func provisioned(ctx context.Context, t *testing.T, cfg aws.Config, prefix string, res provision.Resources) []string {
	t.Helper()
	var out []string
	add := func(typ, name string) { out = append(out, typ+" "+strings.TrimPrefix(name, prefix)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	last := func(arn string) string { return arn[strings.LastIndexAny(arn, ":/")+1:] }

	snsc := sns.NewFromConfig(cfg)
	topics, err := snsc.ListTopics(ctx, &sns.ListTopicsInput{})
	must(err)
	for _, tp := range topics.Topics {
		name := last(aws.ToString(tp.TopicArn))
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		add("AWS::SNS::Topic", name)
		subs, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: tp.TopicArn})
		must(err)
		for _, s := range subs.Subscriptions {
			add("AWS::SNS::Subscription", name+" → "+strings.TrimPrefix(last(aws.ToString(s.Endpoint)), prefix))
		}
	}
	queues, err := sqs.NewFromConfig(cfg).ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix)})
	must(err)
	for _, u := range queues.QueueUrls {
		add("AWS::SQS::Queue", last(u))
	}
	eb := eventbridge.NewFromConfig(cfg)
	rules, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String(prefix)})
	must(err)
	for _, r := range rules.Rules {
		add("AWS::Events::Rule", aws.ToString(r.Name))
		targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: r.Name})
		must(err)
		for _, tg := range targets.Targets {
			add("AWS::Events::Rule target", strings.TrimPrefix(aws.ToString(r.Name), prefix)+" → "+strings.TrimPrefix(last(aws.ToString(tg.Arn)), prefix))
		}
	}
	tables, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
	must(err)
	for _, tb := range tables.TableNames {
		if strings.HasPrefix(tb, prefix) {
			add("AWS::DynamoDB::Table", tb)
		}
	}
	buckets, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).ListBuckets(ctx, &s3.ListBucketsInput{})
	must(err)
	for _, b := range buckets.Buckets {
		if name := aws.ToString(b.Name); strings.HasPrefix(name, strings.ToLower(prefix)) {
			out = append(out, "AWS::S3::Bucket "+strings.TrimPrefix(name, strings.ToLower(prefix)))
		}
	}
	params, err := ssm.NewFromConfig(cfg).GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String(res.ParameterRoot), Recursive: aws.Bool(true)})
	must(err)
	for _, p := range params.Parameters {
		// Back to topology's name, then to the deployed gateway's.
		name := "/mediagw" + strings.TrimPrefix(aws.ToString(p.Name), res.ParameterRoot)
		out = append(out, "AWS::SSM::Parameter "+stack.ParameterName(name))
	}
	ecsc := ecs.NewFromConfig(cfg)
	clusters, err := ecsc.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{res.Cluster}})
	must(err)
	for _, c := range clusters.Clusters {
		add("AWS::ECS::Cluster", aws.ToString(c.ClusterName))
	}
	families, err := ecsc.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String(prefix)})
	must(err)
	for _, f := range families.Families {
		add("AWS::ECS::TaskDefinition", f)
	}
	sort.Strings(out)
	return out
}

// declared lists the same kinds of resources in the synthesized template.
func declared(s *synthesized) []string {
	var out []string
	name := map[string]string{} // logical id → name, for references
	for id, r := range s.doc.Resources {
		switch r.Type {
		case "AWS::SNS::Topic":
			name[id] = fmt.Sprint(r.Properties["TopicName"])
			out = append(out, r.Type+" "+name[id])
		case "AWS::SQS::Queue":
			name[id] = fmt.Sprint(r.Properties["QueueName"])
			out = append(out, r.Type+" "+name[id])
		case "AWS::DynamoDB::Table":
			out = append(out, r.Type+" "+fmt.Sprint(r.Properties["TableName"]))
		case "AWS::ECS::Cluster":
			out = append(out, r.Type+" "+fmt.Sprint(r.Properties["ClusterName"]))
		case "AWS::ECS::TaskDefinition":
			out = append(out, r.Type+" "+fmt.Sprint(r.Properties["Family"]))
		case "AWS::S3::Bucket":
			// <name>-<account>-<region>: the name is the first part.
			join, _ := r.Properties["BucketName"].(map[string]any)["Fn::Join"].([]any)
			if len(join) == 2 {
				out = append(out, r.Type+" "+fmt.Sprint(join[1].([]any)[0]))
			}
		}
	}
	ref := func(v any) string { // Ref or GetAtt [id, Arn] → name
		m, _ := v.(map[string]any)
		if id, ok := m["Ref"].(string); ok {
			return name[id]
		}
		if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
			return name[fmt.Sprint(ga[0])]
		}
		return fmt.Sprint(v)
	}
	for _, r := range s.doc.Resources {
		switch r.Type {
		case "AWS::SNS::Subscription":
			end := ref(r.Properties["Endpoint"])
			if r.Properties["Protocol"] == "email" {
				end = "email"
			}
			out = append(out, r.Type+" "+ref(r.Properties["TopicArn"])+" → "+end)
		case "AWS::Events::Rule":
			rule := fmt.Sprint(r.Properties["Name"])
			out = append(out, r.Type+" "+rule)
			for _, tg := range asList(r.Properties["Targets"]) {
				out = append(out, "AWS::Events::Rule target "+rule+" → "+ref(tg["Arn"]))
			}
		}
	}
	for _, p := range parameterNames(s) {
		out = append(out, "AWS::SSM::Parameter "+p)
	}
	sort.Strings(out)
	return out
}
