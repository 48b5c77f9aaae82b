package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/topology"
)

// QueueResource is a provisioned queue and its dead-letter queue.
type QueueResource struct {
	Name, URL, ARN          string
	DLQName, DLQURL, DLQARN string
	MaxReceiveCount         int
}

// Resources are the physical names, URLs and ARNs of an applied topology,
// keyed by the logical names of topology.json.
type Resources struct {
	Topics     map[string]string
	Queues     map[string]QueueResource
	Tables     map[string]string
	Buckets    map[string]string
	Parameters map[string]string
	// ParameterRoot is where "/mediagw/..." parameters live: "/mediagw", or
	// under a test prefix "/<prefix>/mediagw".
	ParameterRoot     string
	Cluster           string
	TaskDefinitionARN string
}

// Env returns the environment variables that tell services where each
// resource is (see EnvName).
func (r Resources) Env() map[string]string {
	env := map[string]string{}
	for n, arn := range r.Topics {
		env[topology.EnvName(n, "TOPIC_ARN")] = arn
	}
	for n, q := range r.Queues {
		env[topology.EnvName(n, "QUEUE_URL")] = q.URL
		env[topology.EnvName(n, "DLQ_URL")] = q.DLQURL
		env[topology.EnvName(n, "MAX_RECEIVE_COUNT")] = strconv.Itoa(q.MaxReceiveCount)
	}
	for n, t := range r.Tables {
		env[topology.EnvName(n, "TABLE")] = t
	}
	for n, b := range r.Buckets {
		env[topology.EnvName(n, "BUCKET")] = b
	}
	env["PARAMETER_ROOT"] = r.ParameterRoot
	env["ECS_CLUSTER"] = r.Cluster
	env["RECORDER_TASK_DEFINITION"] = r.TaskDefinitionARN
	return env
}

// EnvLines renders Env as sorted KEY=value lines for a shell env file.
func (r Resources) EnvLines() string {
	env := r.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	return b.String()
}

// Kinds are the kinds of resources Apply creates, in its order.
var Kinds = []string{"topics", "queues", "rules", "tables", "buckets", "parameters", "ecs"}

// CheckKinds returns an error naming every one of kinds that is none of Kinds.
func CheckKinds(kinds []string) error {
	var bad []string
	for _, k := range kinds {
		if !slices.Contains(Kinds, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown kinds %s (want some of %s)", strings.Join(bad, ", "), strings.Join(Kinds, ", "))
	}
	return nil
}

// Options for Apply.
type Options struct {
	// Prefix is put before every physical name (tests use a unique one).
	Prefix string
	// LocalParameters writes the parameters' local values (emulator only).
	LocalParameters bool
	// Only limits Apply to these kinds: "topics", "queues", "rules",
	// "tables", "buckets", "parameters", "ecs". Empty means all.
	Only []string
}

func (o Options) wants(kind string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, k := range o.Only {
		if k == kind {
			return true
		}
	}
	return false
}

// Apply creates every resource of d that does not exist yet and returns
// where they are. Running it again changes nothing.
func Apply(ctx context.Context, cfg aws.Config, d topology.Definition, opt Options) (Resources, error) {
	phys := d.WithPrefix(opt.Prefix)
	res := Resources{Topics: map[string]string{}, Queues: map[string]QueueResource{}, Tables: map[string]string{},
		Buckets: map[string]string{}, Parameters: map[string]string{}}
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)

	// Topics: CreateTopic returns the existing topic's ARN.
	physTopic := map[string]string{}
	if opt.wants("topics") || opt.wants("queues") {
		for i, t := range phys.Topics {
			out, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(t.Name)})
			if err != nil {
				return res, fmt.Errorf("topic %s: %w", t.Name, err)
			}
			res.Topics[d.Topics[i].Name] = aws.ToString(out.TopicArn)
			physTopic[t.Name] = aws.ToString(out.TopicArn)
		}
	}
	ruleARNs := map[string]string{}
	if opt.wants("rules") {
		eb := eventbridge.NewFromConfig(cfg)
		for _, r := range phys.Rules {
			out, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(r.Name), EventPattern: aws.String(string(r.Pattern)), State: ebtypes.RuleStateEnabled})
			if err != nil {
				return res, fmt.Errorf("rule %s: %w", r.Name, err)
			}
			ruleARNs[r.Name] = aws.ToString(out.RuleArn)
		}
	}
	if opt.wants("queues") {
		for i, q := range phys.Queues {
			qr, err := applyQueue(ctx, snsc, sqsc, q, physTopic, ruleARNs)
			if err != nil {
				return res, err
			}
			res.Queues[d.Queues[i].Name] = qr
		}
		if opt.wants("rules") {
			eb := eventbridge.NewFromConfig(cfg)
			for _, r := range phys.Rules {
				var targets []ebtypes.Target
				for i, q := range phys.Queues {
					for _, rn := range q.Rules {
						if rn == r.Name {
							targets = append(targets, ebtypes.Target{Id: aws.String(q.Name), Arn: aws.String(res.Queues[d.Queues[i].Name].ARN)})
						}
					}
				}
				if len(targets) == 0 {
					continue
				}
				if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(r.Name), Targets: targets}); err != nil {
					return res, fmt.Errorf("rule %s targets: %w", r.Name, err)
				}
			}
		}
	}
	if opt.wants("tables") {
		ddb := dynamodb.NewFromConfig(cfg)
		for i, t := range phys.Tables {
			if err := applyTable(ctx, ddb, t); err != nil {
				return res, err
			}
			res.Tables[d.Tables[i].Name] = t.Name
		}
	}
	if opt.wants("buckets") {
		// An emulator serves buckets by path: by host name the bucket
		// would have to resolve (mediagw-recordings.localstack in compose).
		s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = o.BaseEndpoint != nil })
		for i, b := range phys.Buckets {
			if err := applyBucket(ctx, s3c, b); err != nil {
				return res, err
			}
			res.Buckets[d.Buckets[i].Name] = b.Name
		}
	}
	if opt.wants("parameters") {
		ssmc := ssm.NewFromConfig(cfg)
		res.ParameterRoot = phys.ParameterRoot()
		for i, p := range phys.Parameters {
			res.Parameters[d.Parameters[i].Name] = p.Name
			if !opt.LocalParameters {
				continue
			}
			_, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(p.Name), Type: ssmtypes.ParameterType(p.Type), Value: aws.String(p.LocalValue)})
			var exists *ssmtypes.ParameterAlreadyExists
			if err != nil && !errors.As(err, &exists) {
				return res, fmt.Errorf("parameter %s: %w", p.Name, err)
			}
		}
	}
	if opt.wants("ecs") {
		arn, err := applyECS(ctx, ecs.NewFromConfig(cfg), phys.ECS)
		if err != nil {
			return res, err
		}
		res.Cluster, res.TaskDefinitionARN = phys.ECS.Cluster, arn
	}
	return res, nil
}

func applyQueue(ctx context.Context, snsc *sns.Client, sqsc *sqs.Client, q topology.Queue, topics, rules map[string]string) (QueueResource, error) {
	qr := QueueResource{Name: q.Name, DLQName: q.DLQName(), MaxReceiveCount: q.MaxReceiveCount}
	var err error
	if qr.DLQURL, qr.DLQARN, err = createQueue(ctx, sqsc, q.DLQName(), map[string]string{
		"MessageRetentionPeriod": "1209600", // 14 days: time for a human to look
	}); err != nil {
		return qr, err
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": qr.DLQARN, "maxReceiveCount": strconv.Itoa(q.MaxReceiveCount)})
	attrs := map[string]string{
		"RedrivePolicy":     string(redrive),
		"VisibilityTimeout": strconv.Itoa(max(q.VisibilityTimeoutSeconds, 30)),
	}
	if qr.URL, qr.ARN, err = createQueue(ctx, sqsc, q.Name, attrs); err != nil {
		return qr, err
	}
	// Allow the topics and rules that feed the queue to send to it.
	var sources []string
	for _, s := range q.Subscriptions {
		sources = append(sources, topics[s.Topic])
	}
	for _, r := range q.Rules {
		sources = append(sources, rules[r])
	}
	if len(sources) > 0 {
		policy, _ := json.Marshal(map[string]any{
			"Version": "2012-10-17",
			"Statement": []map[string]any{{
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": []string{"sns.amazonaws.com", "events.amazonaws.com"}},
				"Action":    "sqs:SendMessage",
				"Resource":  qr.ARN,
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": sources}},
			}},
		})
		if _, err := sqsc.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(qr.URL), Attributes: map[string]string{"Policy": string(policy)}}); err != nil {
			return qr, fmt.Errorf("queue %s policy: %w", q.Name, err)
		}
	}
	for _, s := range q.Subscriptions {
		if err := subscribe(ctx, snsc, topics[s.Topic], qr.ARN, s.Events); err != nil {
			return qr, fmt.Errorf("queue %s subscription to %s: %w", q.Name, s.Topic, err)
		}
	}
	return qr, nil
}

func createQueue(ctx context.Context, sqsc *sqs.Client, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		var exists *sqstypes.QueueNameExists
		if !errors.As(err, &exists) {
			return "", "", fmt.Errorf("queue %s: %w", name, err)
		}
		// Same name, other attributes: keep the queue and set them.
		got, gerr := sqsc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if gerr != nil {
			return "", "", fmt.Errorf("queue %s: %w", name, gerr)
		}
		out = &sqs.CreateQueueOutput{QueueUrl: got.QueueUrl}
		if _, err := sqsc.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: got.QueueUrl, Attributes: attrs}); err != nil {
			return "", "", fmt.Errorf("queue %s attributes: %w", name, err)
		}
	}
	a, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("queue %s arn: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), a.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

func subscribe(ctx context.Context, snsc *sns.Client, topicARN, queueARN string, events []string) error {
	filter, _ := json.Marshal(map[string][]string{"event_type": events})
	attrs := map[string]string{"RawMessageDelivery": "true", "FilterPolicy": string(filter)}
	if len(events) == 0 {
		// The whole topic (the alert mails), in the SNS envelope, which
		// keeps the message's Subject that raw delivery drops.
		attrs = map[string]string{"RawMessageDelivery": "false"}
	}
	var next *string
	for {
		out, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN), NextToken: next})
		if err != nil {
			return err
		}
		for _, s := range out.Subscriptions {
			if aws.ToString(s.Endpoint) == queueARN {
				// Exists: make sure the filter is the one defined now.
				for k, v := range attrs {
					if _, err := snsc.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{
						SubscriptionArn: s.SubscriptionArn, AttributeName: aws.String(k), AttributeValue: aws.String(v),
					}); err != nil {
						return err
					}
				}
				return nil
			}
		}
		if next = out.NextToken; next == nil {
			break
		}
	}
	_, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN), Attributes: attrs})
	return err
}

func applyTable(ctx context.Context, ddb *dynamodb.Client, t topology.Table) error {
	keyType := func(s string) ddbtypes.ScalarAttributeType {
		if s == "N" {
			return ddbtypes.ScalarAttributeTypeN
		}
		return ddbtypes.ScalarAttributeTypeS
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(t.Name),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(t.PartitionKey), AttributeType: keyType(t.PartitionKeyType)},
		},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String(t.PartitionKey), KeyType: ddbtypes.KeyTypeHash}},
	}
	if t.SortKey != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{AttributeName: aws.String(t.SortKey), AttributeType: keyType(t.SortKeyType)})
		in.KeySchema = append(in.KeySchema, ddbtypes.KeySchemaElement{AttributeName: aws.String(t.SortKey), KeyType: ddbtypes.KeyTypeRange})
	}
	_, err := ddb.CreateTable(ctx, in)
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("table %s: %w", t.Name, err)
	}
	if t.TTLAttribute != "" {
		_, err := ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(t.Name),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(t.TTLAttribute), Enabled: aws.Bool(true)}})
		if err != nil && !strings.Contains(err.Error(), "already enabled") {
			return fmt.Errorf("table %s ttl: %w", t.Name, err)
		}
	}
	return nil
}

func applyBucket(ctx context.Context, s3c *s3.Client, b topology.Bucket) error {
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Name)})
	var owned *s3types.BucketAlreadyOwnedByYou
	var exists *s3types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("bucket %s: %w", b.Name, err)
	}
	if b.GlacierAfterDays > 0 {
		_, err = s3c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
			Bucket: aws.String(b.Name),
			LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
				ID:     aws.String("recordings-to-glacier"),
				Status: s3types.ExpirationStatusEnabled,
				Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("")},
				Transitions: []s3types.Transition{{
					Days: aws.Int32(b.GlacierAfterDays), StorageClass: s3types.TransitionStorageClassGlacier,
				}},
			}}},
		})
		if err != nil {
			return fmt.Errorf("bucket %s lifecycle: %w", b.Name, err)
		}
	}
	return nil
}

func applyECS(ctx context.Context, ec *ecs.Client, e topology.ECS) (string, error) {
	if _, err := ec.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(e.Cluster)}); err != nil {
		return "", fmt.Errorf("ecs cluster %s: %w", e.Cluster, err)
	}
	memory, err := strconv.Atoi(e.RecorderMemory) // Validate checked it is a positive number
	if err != nil {
		return "", fmt.Errorf("ecs task definition %s: memory: %w", e.RecorderTaskFamily, err)
	}
	if got, err := ec.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(e.RecorderTaskFamily)}); err == nil && got.TaskDefinition != nil {
		return aws.ToString(got.TaskDefinition.TaskDefinitionArn), nil
	}
	out, err := ec.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(e.RecorderTaskFamily),
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		Cpu:                     aws.String(e.RecorderCPU),
		Memory:                  aws.String(e.RecorderMemory),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name:      aws.String(e.RecorderContainer),
			Image:     aws.String(e.RecorderImage),
			Essential: aws.Bool(true),
			// Fargate needs only the task's memory; moto's RunTask also wants the container's.
			Memory: aws.Int32(int32(memory)),
		}},
	})
	if err != nil {
		return "", fmt.Errorf("ecs task definition %s: %w", e.RecorderTaskFamily, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}
