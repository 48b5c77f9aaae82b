// Package stack is mediagw's one CloudFormation stack, as a CDK v2 app:
// network, the gateway instance, the ECS services, and every topic, queue,
// rule, table, bucket and parameter of pkg/topology/topology.json under
// its name, with one least-privilege role per service (access.go).
package stack

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"mediagw/pkg/topology"
)

// GatewayID is the gateway's id in mediagw (its parameters are under
// /mediagw/gateways/<id>/, its recordings under recordings/<id>/).
const GatewayID = "gw-1"

// GatewayTag is the tag naming the gateway on its instance, volumes and
// Elastic IP (and on whatever replaces them, and on its AMI snapshots):
// the health-sentinel finds them by it (its internal/adapters/ec2), and
// every EC2 grant on existing resources is conditioned on it.
const GatewayTag = "mediagw:gateway"

// alertTopic is the topic of the alert mails, the one email subscriptions
// are made to.
const alertTopic = "mediagw-alert-email"

// httpPort is where every service serves /healthz and /metrics in its
// container.
const httpPort = 8080

// Props configure New.
type Props struct {
	// RepoRoot is the repository root: the build context of the image.
	RepoRoot string
	// Topology is the resource definition (topology.Default()).
	Topology topology.Definition
	// Services are the control services' accesses (nil: Services).
	Services map[string]Access
	awscdk.StackProps
}

// Stack is the synthesized stack and the parts tests look at.
type Stack struct {
	awscdk.Stack
	ServiceRoles map[string]awsiam.Role
	RecorderRole awsiam.Role
}

type builder struct {
	stack      awscdk.Stack
	topo       topology.Definition
	params     map[string]awscdk.CfnParameter
	topics     map[string]awssns.Topic
	queues     map[string]awssqs.Queue
	dlqs       map[string]awssqs.Queue
	tables     map[string]awsdynamodb.Table
	bucket     map[string]awss3.Bucket
	servicesSG awsec2.SecurityGroup
	services   map[string]Access
	gw         gatewayParts
	// suppressions run last (see nag).
	suppressions []func()
}

// New builds the stack.
func New(scope constructs.Construct, id string, p Props) (*Stack, error) {
	st := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	b := &builder{stack: st, topo: p.Topology, params: map[string]awscdk.CfnParameter{},
		topics: map[string]awssns.Topic{}, queues: map[string]awssqs.Queue{}, dlqs: map[string]awssqs.Queue{},
		tables: map[string]awsdynamodb.Table{}, bucket: map[string]awss3.Bucket{}, services: p.Services}
	if b.services == nil {
		b.services = Services
	}
	b.parameters()
	if err := b.messaging(); err != nil {
		return nil, err
	}
	b.data()
	vpc := b.network()
	gw := b.gateway(vpc)
	b.gw = gw
	out := &Stack{Stack: st, ServiceRoles: map[string]awsiam.Role{}}
	if err := b.compute(vpc, gw, p.RepoRoot, out); err != nil {
		return nil, err
	}
	// What the operator's next steps need (README, "Deploy to AWS").
	for name, v := range map[string]*string{
		"GatewayId":             jsii.String(GatewayID),
		"GatewayInstanceId":     gw.instance.Ref(),
		"GatewayPrivateIp":      gw.privateAddr,
		"ClusterName":           jsii.String(b.topo.ECS.Cluster),
		"PrivateSubnets":        awscdk.Fn_Join(jsii.String(","), vpc.SelectSubnets(&awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}).SubnetIds),
		"ServicesSecurityGroup": b.servicesSG.SecurityGroupId(),
	} {
		awscdk.NewCfnOutput(st, jsii.String(name), &awscdk.CfnOutputProps{Value: v})
	}
	if err := b.suppressCustomResourceFunction(); err != nil {
		return nil, err
	}
	for _, s := range b.suppressions {
		s()
	}
	return out, nil
}

func (b *builder) param(name string, props awscdk.CfnParameterProps) awscdk.CfnParameter {
	p := awscdk.NewCfnParameter(b.stack, jsii.String(name), &props)
	b.params[name] = p
	return p
}

// parameters are the design's (GatewayName, Timezone, Password,
// MachineType, ElasticIP, Segment, BucketTransition) and what a real
// deployment needs besides; CloudFormation checks every value before it
// creates anything.
func (b *builder) parameters() {
	b.param("GatewayName", awscdk.CfnParameterProps{Type: jsii.String("String"), Default: jsii.String("Hikvision"),
		AllowedPattern: jsii.String(`^[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}$`),
		Description:    jsii.String("the gateway's device name (1-32 letters, digits, space, _ . -)")})
	b.param("Timezone", awscdk.CfnParameterProps{Type: jsii.String("String"), Default: jsii.String("8"),
		AllowedPattern:        jsii.String(`^(-(1[0-2]|[0-9])|\+?(1[0-4]|[0-9]))(\.(0|25|5|75)|:(00|15|30|45))?$`),
		ConstraintDescription: jsii.String("hours east of UTC, -12 to 14: 8, -5, 5.5 or 5:45"),
		Description:           jsii.String("the gateway's time zone in hours east of UTC (8 is UTC+8)")})
	b.param("Password", awscdk.CfnParameterProps{Type: jsii.String("String"), NoEcho: jsii.Bool(true),
		MinLength: jsii.Number(8), MaxLength: jsii.Number(16), AllowedPattern: jsii.String(`^[!-~]{8,16}$`),
		ConstraintDescription: jsii.String("8 to 16 printable ASCII characters without spaces"),
		Description:           jsii.String("the gateway's admin password; stored as the SSM SecureString /mediagw/gateways/" + GatewayID + "/Password")})
	b.param("MachineType", awscdk.CfnParameterProps{Type: jsii.String("String"), Default: jsii.String("c5.xlarge"),
		AllowedPattern: jsii.String(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`),
		Description:    jsii.String("EC2 instance type of the gateway")})
	b.param("ElasticIP", awscdk.CfnParameterProps{Type: jsii.String("String"), Default: jsii.String(""),
		AllowedPattern: jsii.String(`^(eipalloc-[0-9a-f]{8,17})?$`),
		Description:    jsii.String("allocation id of an existing Elastic IP (the gateway's fixed public address), or empty to allocate one")})
	b.param("Segment", awscdk.CfnParameterProps{Type: jsii.String("Number"), Default: jsii.String("30"),
		MinValue: jsii.Number(2), MaxValue: jsii.Number(600), Description: jsii.String("recording segment length in seconds")})
	b.param("BucketTransition", awscdk.CfnParameterProps{Type: jsii.String("Number"), Default: jsii.String("7"),
		MinValue: jsii.Number(1), MaxValue: jsii.Number(3650), Description: jsii.String("days before recordings move to S3 Glacier Flexible Retrieval")})
	b.param("GatewayAmiId", awscdk.CfnParameterProps{Type: jsii.String("AWS::EC2::Image::Id"),
		Description: jsii.String("AMI of the gateway (a Windows image: its root volume is /dev/sda1, administered over RDP)")})
	b.param("AlertEmail", awscdk.CfnParameterProps{Type: jsii.String("String"),
		AllowedPattern: jsii.String(`^[^@\s]+@[^@\s]+\.[^@\s]+$`), ConstraintDescription: jsii.String("an e-mail address"),
		Description: jsii.String("first recipient of alert mails (mediagw-alert-email); confirm the subscription mail AWS sends")})
	b.param("AdminCidr", awscdk.CfnParameterProps{Type: jsii.String("String"),
		AllowedPattern:        jsii.String(`^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$`),
		ConstraintDescription: jsii.String("an IPv4 CIDR such as 203.0.113.7/32"),
		Description:           jsii.String("the only addresses allowed to open remote desktop (3389) on the gateway")})
	b.param("RecorderCapacity", awscdk.CfnParameterProps{Type: jsii.String("String"), Default: jsii.String("FARGATE"),
		AllowedValues: jsii.Strings("FARGATE", "FARGATE_SPOT"),
		Description:   jsii.String("capacity provider of the recording tasks (FARGATE_SPOT is about 70% cheaper and may be interrupted)")})
	b.param("SnapshotIntervalHours", awscdk.CfnParameterProps{Type: jsii.String("Number"), Default: jsii.String("24"),
		AllowedValues: jsii.Strings("1", "2", "3", "4", "6", "8", "12", "24"),
		Description:   jsii.String("hours between AMI snapshots of the gateway, taken by the health-sentinel while the gateway is healthy (its SNAPSHOT_RPO)")})
	b.param("SnapshotRetention", awscdk.CfnParameterProps{Type: jsii.String("Number"), Default: jsii.String("7"),
		MinValue: jsii.Number(1), MaxValue: jsii.Number(1000), Description: jsii.String("how many gateway AMI snapshots the health-sentinel keeps (its SNAPSHOTS_KEEP)")})
}

func (b *builder) str(name string) *string { return b.params[name].ValueAsString() }

// messaging creates every topic, queue (with its DLQ and redrive),
// subscription and EventBridge rule of the topology.
func (b *builder) messaging() error {
	for _, t := range b.topo.Topics {
		b.topics[t.Name] = awssns.NewTopic(b.stack, jsii.String("Topic-"+t.Name), &awssns.TopicProps{
			TopicName: jsii.String(t.Name),
			// SNS's own key: publishers need no KMS grant, and SQS subscriptions work.
			MasterKey:  awskms.Alias_FromAliasName(b.stack, jsii.String("Topic-"+t.Name+"-Key"), jsii.String("alias/aws/sns")),
			EnforceSSL: jsii.Bool(true),
		})
	}
	// No email subscription here: the health-sentinel subscribes AlertEmail
	// itself (ALERT_EMAIL, once it is not subscribed or pending). SNS
	// answers a second Subscribe of the same address with the same
	// subscription, so a stack-owned one would have two owners: a change
	// of AlertEmail or a rollback would make CloudFormation unsubscribe the
	// address the sentinel has just found subscribed, and the sentinel
	// would not notice until its next start. One owner: the sentinel (the
	// topic, and its subscriptions with it, goes with the stack).
	rules := map[string]awsevents.Rule{}
	for _, r := range b.topo.Rules {
		var pattern map[string]any
		if err := json.Unmarshal(r.Pattern, &pattern); err != nil {
			return fmt.Errorf("stack: rule %s pattern: %w", r.Name, err)
		}
		rule := awsevents.NewRule(b.stack, jsii.String("Rule-"+r.Name), &awsevents.RuleProps{
			RuleName: jsii.String(r.Name),
			// The whole pattern is topology's, set below as written there.
			EventPattern: &awsevents.EventPattern{Source: jsii.Strings("placeholder")},
		})
		rule.Node().DefaultChild().(awsevents.CfnRule).AddPropertyOverride(jsii.String("EventPattern"), pattern)
		rules[r.Name] = rule
	}
	for _, q := range b.topo.Queues {
		dlq := awssqs.NewQueue(b.stack, jsii.String("Queue-"+q.DLQName()), &awssqs.QueueProps{
			QueueName:       jsii.String(q.DLQName()),
			RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)), // time for a human to look
			Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
			EnforceSSL:      jsii.Bool(true),
		})
		queue := awssqs.NewQueue(b.stack, jsii.String("Queue-"+q.Name), &awssqs.QueueProps{
			QueueName:         jsii.String(q.Name),
			VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(float64(max(q.VisibilityTimeoutSeconds, 30)))),
			DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(float64(q.MaxReceiveCount))},
			// SQS's own keys: SNS and EventBridge can deliver without a KMS grant.
			Encryption: awssqs.QueueEncryption_SQS_MANAGED,
			EnforceSSL: jsii.Bool(true),
		})
		b.queues[q.Name], b.dlqs[q.Name] = queue, dlq
		for _, s := range q.Subscriptions {
			if len(s.Events) == 0 {
				// The whole topic, in its SNS envelope (a mail's Subject is
				// there), as the provisioner subscribes it.
				b.topics[s.Topic].AddSubscription(awssnssubscriptions.NewSqsSubscription(queue, &awssnssubscriptions.SqsSubscriptionProps{RawMessageDelivery: jsii.Bool(false)}))
				continue
			}
			b.topics[s.Topic].AddSubscription(awssnssubscriptions.NewSqsSubscription(queue, &awssnssubscriptions.SqsSubscriptionProps{
				RawMessageDelivery: jsii.Bool(true),
				FilterPolicy: &map[string]awssns.SubscriptionFilter{
					"event_type": awssns.SubscriptionFilter_StringFilter(&awssns.StringConditions{Allowlist: jsii.Strings(s.Events...)}),
				},
			}))
		}
		for _, r := range q.Rules {
			rules[r].AddTarget(awseventstargets.NewSqsQueue(queue, nil))
		}
	}
	return nil
}

// data creates the tables, the recordings bucket and the gateway's parameters.
func (b *builder) data() {
	keyType := func(t string) awsdynamodb.AttributeType {
		if t == "N" {
			return awsdynamodb.AttributeType_NUMBER
		}
		return awsdynamodb.AttributeType_STRING
	}
	for _, t := range b.topo.Tables {
		props := &awsdynamodb.TableProps{
			TableName:                        jsii.String(t.Name),
			PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(t.PartitionKey), Type: keyType(t.PartitionKeyType)},
			BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
			Encryption:                       awsdynamodb.TableEncryption_AWS_MANAGED,
			RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN, // the recordings' index outlives the stack
		}
		if t.SortKey != "" {
			props.SortKey = &awsdynamodb.Attribute{Name: jsii.String(t.SortKey), Type: keyType(t.SortKeyType)}
		}
		if t.TTLAttribute != "" {
			props.TimeToLiveAttribute = jsii.String(t.TTLAttribute)
		}
		b.tables[t.Name] = awsdynamodb.NewTable(b.stack, jsii.String("Table-"+t.Name), props)
	}
	for _, bk := range b.topo.Buckets {
		bucket := awss3.NewBucket(b.stack, jsii.String("Bucket-"+bk.Name), &awss3.BucketProps{
			// Bucket names are global: the account and region make it ours.
			BucketName:        awscdk.Fn_Join(jsii.String("-"), jsii.Strings(bk.Name, *awscdk.Aws_ACCOUNT_ID(), *awscdk.Aws_REGION())),
			BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
			EnforceSSL:        jsii.Bool(true),
			Encryption:        awss3.BucketEncryption_S3_MANAGED,
			ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
			RemovalPolicy:     awscdk.RemovalPolicy_RETAIN, // recordings outlive the stack
			LifecycleRules: &[]*awss3.LifecycleRule{{
				Id: jsii.String("recordings-to-glacier"),
				// BucketTransition, not topology's local default: the operator's choice.
				Transitions: &[]*awss3.Transition{{
					StorageClass:    awss3.StorageClass_GLACIER(),
					TransitionAfter: awscdk.Duration_Days(b.params["BucketTransition"].ValueAsNumber()),
				}},
				// A recorder killed mid-upload leaves parts that cost until aborted.
				AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
			}},
		})
		b.bucket[bk.Name] = bucket
		b.nag(bucket, "AwsSolutions-S1", "only the recorders' role writes here and the stack grants nothing else; a second bucket of access logs would cost per request for no reader")
	}
}

// OperatorParameters are topology parameters the stack does not write:
// BootstrapPassword, the AMI's factory password, is no input of the stack;
// the operator puts it (README, "Deploy to AWS").
var OperatorParameters = []string{"BootstrapPassword"}

// ParameterName is the physical name of a topology parameter for the
// deployed gateway: topology names them for the local one.
func ParameterName(local string) string {
	const marker = "/gateways/"
	i := strings.Index(local, marker)
	if i < 0 {
		return local
	}
	rest := local[i+len(marker):]
	_, leaf, _ := strings.Cut(rest, "/")
	return local[:i] + marker + GatewayID + "/" + leaf
}

func leafOf(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// network is the VPC: the gateway in a public subnet, the services and
// recorders in private ones. S3 and DynamoDB, the bulk of the traffic,
// go through free gateway endpoints; the other AWS APIs (SQS, SNS, SSM,
// ECS, EventBridge, CloudWatch Logs, ECR) through one NAT gateway, which
// costs less than the interface endpoints they would need (README,
// "NAT gateway or interface endpoints").
func (b *builder) network() awsec2.Vpc {
	flowLogs := awslogs.NewLogGroup(b.stack, jsii.String("FlowLogs"), &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_MONTH, RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	vpc := awsec2.NewVpc(b.stack, jsii.String("Vpc"), &awsec2.VpcProps{
		VpcName:     jsii.String("mediagw"),
		IpAddresses: awsec2.IpAddresses_Cidr(jsii.String("10.40.0.0/16")),
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(1),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(20)},
		},
		// Rejected traffic only: the accepted RTSP streams would be most of the bill.
		FlowLogs: &map[string]*awsec2.FlowLogOptions{"rejected": {
			TrafficType: awsec2.FlowLogTrafficType_REJECT,
			Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
		}},
	})
	vpc.AddGatewayEndpoint(jsii.String("S3"), &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_S3()})
	vpc.AddGatewayEndpoint(jsii.String("DynamoDB"), &awsec2.GatewayVpcEndpointOptions{Service: awsec2.GatewayVpcEndpointAwsService_DYNAMODB()})
	return vpc
}

type gatewayParts struct {
	sg          awsec2.SecurityGroup
	instance    awsec2.CfnInstance
	template    awsec2.CfnLaunchTemplate
	subnet      *string
	allocation  *string
	privateAddr *string
}

// gateway is the media gateway: an instance of the operator's AMI in a
// public subnet behind the Elastic IP, IMDSv2 only, encrypted root volume.
// The instance and the Elastic IP carry GatewayTag: the health-sentinel
// finds them by it, snapshots the instance (AMIs) and, when reboots do not
// bring the gateway back, replaces it and moves the Elastic IP.
func (b *builder) gateway(vpc awsec2.Vpc) gatewayParts {
	sg := awsec2.NewSecurityGroup(b.stack, jsii.String("GatewaySG"), &awsec2.SecurityGroupProps{
		Vpc: vpc, Description: jsii.String("mediagw gateway: API and RTSP from the VPC, ISUP from cameras, RDP from AdminCidr"),
	})
	vpcPeer := awsec2.Peer_Ipv4(vpc.VpcCidrBlock())
	sg.AddIngressRule(vpcPeer, awsec2.Port_Tcp(jsii.Number(80)), jsii.String("ISAPI over HTTP from the services"), nil)
	sg.AddIngressRule(vpcPeer, awsec2.Port_Tcp(jsii.Number(443)), jsii.String("ISAPI over HTTPS from the services"), nil)
	sg.AddIngressRule(vpcPeer, awsec2.Port_Tcp(jsii.Number(554)), jsii.String("RTSP from the recorders"), nil)
	// Cameras register in from wherever they are (ISUP: registration on
	// 7660, media on 7661); the gateway cannot know their addresses.
	for _, port := range []float64{7660, 7661} {
		sg.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(port)), jsii.String(fmt.Sprintf("ISUP %v (TCP) from cameras", port)), nil)
		sg.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Udp(jsii.Number(port)), jsii.String(fmt.Sprintf("ISUP %v (UDP) from cameras", port)), nil)
	}
	sg.AddIngressRule(awsec2.Peer_Ipv4(b.str("AdminCidr")), awsec2.Port_Tcp(jsii.Number(3389)), jsii.String("remote desktop from AdminCidr only"), nil)
	b.nag(sg, "AwsSolutions-EC23", "cameras register to the gateway over ISUP (7660/7661) from addresses nobody knows in advance; nothing else is open to the internet")

	lt := awsec2.NewCfnLaunchTemplate(b.stack, jsii.String("GatewayLaunchTemplate"), &awsec2.CfnLaunchTemplateProps{
		LaunchTemplateData: &awsec2.CfnLaunchTemplate_LaunchTemplateDataProperty{
			MetadataOptions: &awsec2.CfnLaunchTemplate_MetadataOptionsProperty{HttpTokens: jsii.String("required"), HttpEndpoint: jsii.String("enabled")},
			// The gateway's volumes carry its tag: what EC2 grants are conditioned on.
			TagSpecifications: &[]interface{}{&awsec2.CfnLaunchTemplate_TagSpecificationProperty{
				ResourceType: jsii.String("volume"),
				Tags:         &[]*awscdk.CfnTag{{Key: jsii.String(GatewayTag), Value: jsii.String(GatewayID)}},
			}},
		},
	})
	tags := &[]*awscdk.CfnTag{{Key: jsii.String("Name"), Value: jsii.String("mediagw-gateway")}, {Key: jsii.String(GatewayTag), Value: jsii.String(GatewayID)}}
	inst := awsec2.NewCfnInstance(b.stack, jsii.String("Gateway"), &awsec2.CfnInstanceProps{
		ImageId:          b.str("GatewayAmiId"),
		InstanceType:     b.str("MachineType"),
		SubnetId:         (*vpc.PublicSubnets())[0].SubnetId(),
		SecurityGroupIds: &[]interface{}{sg.SecurityGroupId()},
		LaunchTemplate: &awsec2.CfnInstance_LaunchTemplateSpecificationProperty{
			LaunchTemplateId: lt.Ref(), Version: lt.AttrLatestVersionNumber(),
		},
		BlockDeviceMappings: &[]interface{}{&awsec2.CfnInstance_BlockDeviceMappingProperty{
			DeviceName: jsii.String("/dev/sda1"),
			// Deleted with the instance: the sentinel's AMIs keep the data,
			// and an instance it retired after a replacement would leave
			// its volume behind (an AMI copies this flag to the replacement).
			Ebs: &awsec2.CfnInstance_EbsProperty{Encrypted: jsii.Bool(true), VolumeType: jsii.String("gp3"), VolumeSize: jsii.Number(100), DeleteOnTermination: jsii.Bool(true)},
		}},
		Monitoring: jsii.Bool(true),
		// No termination protection: after a replacement the sentinel
		// terminates the old instance (TerminateInstances would fail).
		// Only roles allowed to terminate it can: the sentinel's, by tag.
		Tags: tags,
	})
	b.nag(inst, "AwsSolutions-EC29", "the health-sentinel replaces a gateway that reboots do not bring back and then terminates the old instance, which termination protection would refuse; only its role may terminate, and only instances tagged "+GatewayTag+"="+GatewayID+"; its AMI snapshots keep the gateway's disk")
	allocate := awscdk.NewCfnCondition(b.stack, jsii.String("AllocateElasticIP"), &awscdk.CfnConditionProps{
		Expression: awscdk.Fn_ConditionEquals(b.str("ElasticIP"), jsii.String("")),
	})
	eip := awsec2.NewCfnEIP(b.stack, jsii.String("GatewayEIP"), &awsec2.CfnEIPProps{Domain: jsii.String("vpc"), Tags: tags})
	eip.CfnOptions().SetCondition(allocate)
	allocation := awscdk.Token_AsString(awscdk.Fn_ConditionIf(allocate.LogicalId(), eip.AttrAllocationId(), b.str("ElasticIP")), nil)
	awsec2.NewCfnEIPAssociation(b.stack, jsii.String("GatewayEIPAssociation"), &awsec2.CfnEIPAssociationProps{
		AllocationId: allocation, InstanceId: inst.Ref(),
	})
	// An existing allocation (ElasticIP) gets the gateway's tag too, which
	// CloudFormation cannot put on an address it did not create; the tag
	// is taken off again when the stack goes. (A new one has it already;
	// tagging it again changes nothing.)
	eipARN := awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("ec2"), Resource: jsii.String("elastic-ip"), ResourceName: allocation}, b.stack)
	tagEIP := &customresources.AwsSdkCall{
		Service: jsii.String("EC2"), Action: jsii.String("createTags"),
		Parameters:         map[string]any{"Resources": []*string{allocation}, "Tags": []map[string]any{{"Key": GatewayTag, "Value": GatewayID}}},
		PhysicalResourceId: customresources.PhysicalResourceId_Of(allocation),
	}
	customresources.NewAwsCustomResource(b.stack, jsii.String("ElasticIPTag"), &customresources.AwsCustomResourceProps{
		OnCreate: tagEIP, OnUpdate: tagEIP,
		OnDelete: &customresources.AwsSdkCall{Service: jsii.String("EC2"), Action: jsii.String("deleteTags"),
			Parameters: map[string]any{"Resources": []*string{allocation}, "Tags": []map[string]any{{"Key": GatewayTag}}}},
		Policy:              customresources.AwsCustomResourcePolicy_FromSdkCalls(&customresources.SdkCallsPolicyOptions{Resources: jsii.Strings(*eipARN)}),
		InstallLatestAwsSdk: jsii.Bool(false),
	})
	// The allocation, new or existing; its address is looked up by the
	// ExternalIP parameter's custom resource (gatewayParameters).
	return gatewayParts{sg: sg, instance: inst, template: lt, subnet: (*vpc.PublicSubnets())[0].SubnetId(), allocation: allocation, privateAddr: inst.AttrPrivateIp()}
}

// gatewayParameters writes the deployed gateway's SSM parameters. Plain
// ones are CloudFormation resources; the password is a SecureString, which
// CloudFormation cannot create, so a custom resource puts it (its log
// shows no request or response data); another, run by the same function,
// reads the Elastic IP's address, which CloudFormation cannot look up for
// an existing allocation.
func (b *builder) gatewayParameters(gw gatewayParts) ([]string, error) {
	values := map[string]*string{"GatewayName": b.str("GatewayName"), "Timezone": b.str("Timezone")}
	var names []string
	var secure []string
	for _, p := range b.topo.Parameters {
		name := ParameterName(p.Name)
		leaf := leafOf(name)
		switch {
		case p.Type == "SecureString" && leaf == "Password":
			secure = append(secure, name)
		case values[leaf] != nil:
			awsssm.NewStringParameter(b.stack, jsii.String("Parameter-"+leaf), &awsssm.StringParameterProps{
				ParameterName: jsii.String(name), StringValue: values[leaf],
			})
		case leaf == "ExternalIP":
			addr := customresources.NewAwsCustomResource(b.stack, jsii.String("ElasticIPAddress"), &customresources.AwsCustomResourceProps{
				OnUpdate: &customresources.AwsSdkCall{
					Service: jsii.String("EC2"), Action: jsii.String("describeAddresses"),
					Parameters:         map[string]any{"AllocationIds": []*string{gw.allocation}},
					PhysicalResourceId: customresources.PhysicalResourceId_Of(gw.allocation),
					OutputPaths:        jsii.Strings("Addresses.0.PublicIp"),
				},
				// ec2:DescribeAddresses has no resource-level permissions: AWS requires "*".
				Policy:              customresources.AwsCustomResourcePolicy_FromSdkCalls(&customresources.SdkCallsPolicyOptions{Resources: customresources.AwsCustomResourcePolicy_ANY_RESOURCE()}),
				InstallLatestAwsSdk: jsii.Bool(false),
			})
			b.nag(addr, "AwsSolutions-IAM5", "ec2:DescribeAddresses supports no resource-level permissions: AWS requires \"*\"")
			awsssm.NewStringParameter(b.stack, jsii.String("Parameter-"+leaf), &awsssm.StringParameterProps{
				ParameterName: jsii.String(name), StringValue: addr.GetResponseField(jsii.String("Addresses.0.PublicIp")),
			})
		case slices.Contains(OperatorParameters, leaf):
			continue
		default:
			return nil, fmt.Errorf("stack: topology parameter %s has no value in the stack: give it one or list it in OperatorParameters", p.Name)
		}
		names = append(names, name)
	}
	for _, name := range secure {
		arn := awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("ssm"), Resource: jsii.String("parameter"), ResourceName: jsii.String(strings.TrimPrefix(name, "/"))}, b.stack)
		put := &customresources.AwsSdkCall{
			Service: jsii.String("SSM"), Action: jsii.String("putParameter"),
			Parameters:         map[string]any{"Name": name, "Type": "SecureString", "Value": b.str("Password"), "Overwrite": true},
			PhysicalResourceId: customresources.PhysicalResourceId_Of(jsii.String(name)),
			// Not a word of the request or the answer in the function's log.
			Logging: customresources.Logging_WithDataHidden(),
		}
		customresources.NewAwsCustomResource(b.stack, jsii.String("Parameter-"+leafOf(name)), &customresources.AwsCustomResourceProps{
			OnCreate: put, OnUpdate: put,
			OnDelete: &customresources.AwsSdkCall{Service: jsii.String("SSM"), Action: jsii.String("deleteParameter"),
				Parameters: map[string]any{"Name": name}, Logging: customresources.Logging_WithDataHidden()},
			Policy:              customresources.AwsCustomResourcePolicy_FromSdkCalls(&customresources.SdkCallsPolicyOptions{Resources: jsii.Strings(*arn)}),
			InstallLatestAwsSdk: jsii.Bool(false),
		})
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// compute: the cluster, the four services, the recorder's task definition.
func (b *builder) compute(vpc awsec2.Vpc, gw gatewayParts, repoRoot string, out *Stack) error {
	if _, err := b.gatewayParameters(gw); err != nil {
		return err
	}
	cluster := awsecs.NewCluster(b.stack, jsii.String("Cluster"), &awsecs.ClusterProps{
		ClusterName:                    jsii.String(b.topo.ECS.Cluster),
		Vpc:                            vpc,
		EnableFargateCapacityProviders: jsii.Bool(true),
	})
	b.nag(cluster, "AwsSolutions-ECS4", "Container Insights is billed per metric and grows with the recording tasks; the services export their own Prometheus metrics")
	// One image for every binary (deploy/Dockerfile): built with ffmpeg,
	// which the recorder needs; each container runs its own binary.
	image := awsecs.ContainerImage_FromAsset(jsii.String(repoRoot), &awsecs.AssetImageProps{
		File:      jsii.String("deploy/Dockerfile"),
		BuildArgs: &map[string]*string{"SERVICE": jsii.String("recorder")},
		Platform:  awsecrassets.Platform_LINUX_AMD64(),
		Exclude:   jsii.Strings(".git", ".tools", ".run", "bin", ".ci", "deploy/cdk/cdk.out", "deploy/cdk/node_modules"),
	})
	b.servicesSG = awsec2.NewSecurityGroup(b.stack, jsii.String("ServicesSG"), &awsec2.SecurityGroupProps{
		Vpc: vpc, Description: jsii.String("mediagw control services: no inbound, outbound to the gateway and AWS"),
	})
	recorderSG := awsec2.NewSecurityGroup(b.stack, jsii.String("RecorderSG"), &awsec2.SecurityGroupProps{
		Vpc: vpc, Description: jsii.String("mediagw recorders: no inbound, outbound to the gateway and AWS"),
	})
	private := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}

	// The recorder's task definition, with its own execution and task roles.
	recLogs := b.logGroup("recorder")
	recRole := b.role("RecorderTaskRole", "the recording task (services/recorder)")
	if err := b.grant(recRole, "recorder", Recorder, nil); err != nil {
		return err
	}
	cpu, _ := strconv.Atoi(b.topo.ECS.RecorderCPU) // topology.Validate checked both are numbers
	mem, _ := strconv.Atoi(b.topo.ECS.RecorderMemory)
	recTask := awsecs.NewFargateTaskDefinition(b.stack, jsii.String("RecorderTask"), &awsecs.FargateTaskDefinitionProps{
		Family: jsii.String(b.topo.ECS.RecorderTaskFamily), Cpu: jsii.Number(float64(cpu)), MemoryLimitMiB: jsii.Number(float64(mem)),
		TaskRole:      recRole,
		ExecutionRole: b.executionRole("RecorderExecutionRole"),
	})
	recTask.AddContainer(jsii.String(b.topo.ECS.RecorderContainer), &awsecs.ContainerDefinitionOptions{
		ContainerName: jsii.String(b.topo.ECS.RecorderContainer),
		Image:         image,
		EntryPoint:    jsii.Strings("/usr/local/bin/recorder"),
		Essential:     jsii.Bool(true),
		Logging:       awsecs.LogDrivers_AwsLogs(&awsecs.AwsLogDriverProps{LogGroup: recLogs, StreamPrefix: jsii.String(recorderStreamPrefix)}),
		// The task-manager's RECORDER_STOP_TIMEOUT is 30 s: the same here.
		StopTimeout: awscdk.Duration_Seconds(jsii.Number(30)),
	})
	out.RecorderRole = recRole
	passable := []*string{recRole.RoleArn(), recTask.ExecutionRole().RoleArn()}

	names := []string{}
	for n := range b.services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		acc := b.services[name]
		role := b.role(camel(name)+"Role", "the "+name+" service")
		extra := map[string]*string{}
		if name == "task-manager" {
			extra = map[string]*string{
				"LAUNCHER":                 jsii.String("ecs"),
				"ECS_CLUSTER":              cluster.ClusterName(),
				"RECORDER_TASK_DEFINITION": recTask.TaskDefinitionArn(),
				"RECORDER_CONTAINER":       jsii.String(b.topo.ECS.RecorderContainer),
				"RECORDER_CAPACITY":        b.str("RecorderCapacity"),
				// The gateway's zone only: RTSP between zones costs $0.01/GB each way.
				"SUBNETS":         (*vpc.PrivateSubnets())[0].SubnetId(),
				"SECURITY_GROUPS": recorderSG.SecurityGroupId(),
				"SEGMENT_LENGTH":  awscdk.Fn_Join(jsii.String(""), &[]*string{b.str("Segment"), jsii.String("s")}),
			}
		}
		if name == "health-sentinel" {
			extra = b.sentinelEnvironment(gw)
		}
		if err := b.grant(role, name, acc, &ecsTargets{cluster: cluster, taskDef: recTask, passable: passable}); err != nil {
			return err
		}
		out.ServiceRoles[name] = role
		env := b.environment(acc)
		for k, v := range extra {
			env[k] = v
		}
		task := awsecs.NewFargateTaskDefinition(b.stack, jsii.String(camel(name)+"Task"), &awsecs.FargateTaskDefinitionProps{
			Family: jsii.String("mediagw-" + name), Cpu: jsii.Number(256), MemoryLimitMiB: jsii.Number(512),
			TaskRole: role, ExecutionRole: b.executionRole(camel(name) + "ExecutionRole"),
		})
		task.AddContainer(jsii.String(name), &awsecs.ContainerDefinitionOptions{
			ContainerName: jsii.String(name),
			Image:         image,
			EntryPoint:    jsii.Strings("/usr/local/bin/" + name),
			Essential:     jsii.Bool(true),
			Environment:   &env,
			Logging:       awsecs.LogDrivers_AwsLogs(&awsecs.AwsLogDriverProps{LogGroup: b.logGroup(name), StreamPrefix: jsii.String(name)}),
			HealthCheck: &awsecs.HealthCheck{
				Command:     jsii.Strings("CMD", "curl", "-fsS", "-o", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)),
				Interval:    awscdk.Duration_Seconds(jsii.Number(30)),
				Timeout:     awscdk.Duration_Seconds(jsii.Number(5)),
				Retries:     jsii.Number(3),
				StartPeriod: awscdk.Duration_Seconds(jsii.Number(30)),
			},
		})
		b.nag(task, "AwsSolutions-ECS2", "the environment holds resource names and settings, never a secret: passwords are read from SSM by the service")
		awsecs.NewFargateService(b.stack, jsii.String(camel(name)+"Service"), &awsecs.FargateServiceProps{
			ServiceName:    jsii.String("mediagw-" + name),
			Cluster:        cluster,
			TaskDefinition: task,
			DesiredCount:   jsii.Number(1),
			// A new version that fails its health check is rolled back.
			CircuitBreaker:    &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
			MinHealthyPercent: jsii.Number(100),
			MaxHealthyPercent: jsii.Number(200),
			VpcSubnets:        private,
			SecurityGroups:    &[]awsec2.ISecurityGroup{b.servicesSG},
			AssignPublicIp:    jsii.Bool(false),
		})
	}
	return nil
}

// sentinelEnvironment is what the health-sentinel needs besides its
// resources: the gateway to look after (its id, the one its SSM parameters
// are under, and its ISAPI at the instance's private address: the services
// reach the gateway inside the VPC), the alert mail address it subscribes,
// the snapshot schedule, and how the recorder's log streams are named.
func (b *builder) sentinelEnvironment(gw gatewayParts) map[string]*string {
	return map[string]*string{
		"GATEWAYS":    awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String(GatewayID + "=http://"), gw.privateAddr}),
		"ALERT_EMAIL": b.str("AlertEmail"),
		// An AMI every SnapshotIntervalHours, the newest SnapshotRetention
		// kept; no age limit, so that the count alone says how many (as the
		// parameter promises; the newest healthy one is always kept).
		"SNAPSHOT_RPO":      awscdk.Fn_Join(jsii.String(""), &[]*string{b.str("SnapshotIntervalHours"), jsii.String("h")}),
		"SNAPSHOTS_KEEP":    b.str("SnapshotRetention"),
		"SNAPSHOTS_MAX_AGE": jsii.String("0s"),
		// A crash loop's mail names the task's log stream:
		// <prefix>/<container>/<task id>, as the recorder's task logs.
		"RECORDER_CONTAINER":         jsii.String(b.topo.ECS.RecorderContainer),
		"RECORDER_LOG_STREAM_PREFIX": jsii.String(recorderStreamPrefix),
	}
}

// recorderStreamPrefix is the awslogs stream prefix of the recorder's task.
const recorderStreamPrefix = "recorder"

func (b *builder) logGroup(name string) awslogs.LogGroup {
	return awslogs.NewLogGroup(b.stack, jsii.String(camel(name)+"Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/mediagw/" + name),
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
}

func (b *builder) role(id, what string) awsiam.Role {
	return awsiam.NewRole(b.stack, jsii.String(id), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), nil),
		Description: jsii.String("mediagw: what the code of " + what + " calls, and nothing else"),
	})
}

// executionRole lets ECS pull the image and write the logs. CDK adds the
// grants it needs; ecr:GetAuthorizationToken has no resource to scope to.
func (b *builder) executionRole(id string) awsiam.Role {
	r := awsiam.NewRole(b.stack, jsii.String(id), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), nil),
	})
	b.nag(r, "AwsSolutions-IAM5", "ecr:GetAuthorizationToken supports no resource-level permissions (AWS requires \"*\"); the log stream wildcard is the task's own log group's streams")
	return r
}

// environment is where each declared resource is, in the variables
// topology.EnvName names (what pkg/service reads).
func (b *builder) environment(acc Access) map[string]*string {
	env := map[string]*string{"HTTP_ADDR": jsii.String(fmt.Sprintf(":%d", httpPort))}
	if acc.ParameterRoot {
		env["PARAMETER_ROOT"] = jsii.String(b.topo.ParameterRoot())
	}
	for _, t := range acc.Tables {
		env[topology.EnvName(t, "TABLE")] = b.tables[t].TableName()
	}
	for _, q := range acc.Queues {
		env[topology.EnvName(q, "QUEUE_URL")] = b.queues[q].QueueUrl()
		env[topology.EnvName(q, "DLQ_URL")] = b.dlqs[q].QueueUrl()
		for _, tq := range b.topo.Queues {
			if tq.Name == q {
				env[topology.EnvName(q, "MAX_RECEIVE_COUNT")] = jsii.String(strconv.Itoa(tq.MaxReceiveCount))
			}
		}
	}
	for _, t := range acc.Topics {
		env[topology.EnvName(t, "TOPIC_ARN")] = b.topics[t].TopicArn()
	}
	for _, bk := range acc.Buckets {
		env[topology.EnvName(bk, "BUCKET")] = b.bucket[bk].BucketName()
	}
	return env
}

// ecsTargets are what the task-manager's ECS calls act on.
type ecsTargets struct {
	cluster  awsecs.Cluster
	taskDef  awsecs.FargateTaskDefinition
	passable []*string
}

// grant gives role exactly acc.Actions, each on the resources of its
// kind that acc declares. An action nobody has scoped yet is an error, so
// a new SDK call (say, EC2 for the health-sentinel) cannot slip in on "*".
func (b *builder) grant(role awsiam.Role, who string, acc Access, e *ecsTargets) error {
	groups := map[string][]string{} // resources joined → actions
	resourcesOf := map[string][]*string{}
	conditions := map[string]*map[string]any{}
	add := func(action, id string, res []*string, cond *map[string]any) {
		groups[id] = append(groups[id], action)
		resourcesOf[id] = res
		conditions[id] = cond
	}
	arn := func(service, resource string) *string {
		return awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String(service), Resource: jsii.String(resource)}, b.stack)
	}
	root := strings.TrimPrefix(b.topo.ParameterRoot(), "/")
	gateways := arn("ssm", "parameter/"+root+"/gateways/*")
	for _, action := range acc.Actions {
		prefix, op, _ := strings.Cut(action, ":")
		switch {
		case prefix == "dynamodb":
			var res []*string
			for _, t := range acc.Tables {
				res = append(res, b.tables[t].TableArn())
			}
			add(action, "tables", res, nil)
		case prefix == "sqs":
			var res []*string
			for _, q := range acc.Queues {
				// The consumer copies a bad message to the DLQ itself.
				res = append(res, b.queues[q].QueueArn(), b.dlqs[q].QueueArn())
			}
			add(action, "queues", res, nil)
		case action == "sns:Publish":
			var res []*string
			for _, t := range acc.Topics {
				res = append(res, b.topics[t].TopicArn())
			}
			add(action, "topics", res, nil)
		case action == "sns:Subscribe" || action == "sns:ListSubscriptionsByTopic":
			// Only the alert mail topic takes email subscriptions, and the
			// only one a service makes is AlertEmail's (ALERT_EMAIL).
			if !slices.Contains(acc.Topics, alertTopic) {
				return fmt.Errorf("stack: %s calls %s but does not declare %s", who, action, alertTopic)
			}
			res := []*string{b.topics[alertTopic].TopicArn()}
			if action == "sns:Subscribe" {
				add(action, "subscribe", res, &map[string]any{"StringEquals": map[string]any{
					"sns:Protocol": "email", "sns:Endpoint": b.str("AlertEmail")}})
			} else {
				add(action, "subscriptions", res, nil)
			}
		case action == "ssm:DescribeParameters":
			// DescribeParameters supports no resource-level permissions: AWS requires "*".
			add(action, "any", []*string{jsii.String("*")}, nil)
		case prefix == "ssm" && (op == "PutParameter" || op == "DeleteParameter"):
			var res []*string
			for _, leaf := range acc.SSMWrites {
				res = append(res, arn("ssm", "parameter/"+root+"/gateways/*/"+leaf))
			}
			add(action, "ssm-writes", res, nil)
		case prefix == "ssm":
			add(action, "ssm-reads", []*string{gateways}, nil)
		case action == "s3:PutObject" || action == "s3:AbortMultipartUpload" || action == "s3:GetObject" || action == "s3:DeleteObject":
			var res []*string
			for _, bk := range acc.Buckets {
				res = append(res, b.bucket[bk].ArnForObjects(jsii.String("*")))
			}
			add(action, "objects", res, nil)
		case action == "s3:ListBucket":
			var res []*string
			for _, bk := range acc.Buckets {
				res = append(res, b.bucket[bk].BucketArn())
			}
			add(action, "buckets", res, nil)
		case action == "ecs:RunTask" && e != nil:
			// Any revision of the recorder's family, in our cluster only.
			family := arn("ecs", "task-definition/"+b.topo.ECS.RecorderTaskFamily+":*")
			add(action, "taskdef", []*string{family}, &map[string]any{"ArnEquals": map[string]any{"ecs:cluster": e.cluster.ClusterArn()}})
		case (action == "ecs:StopTask" || action == "ecs:DescribeTasks") && e != nil:
			add(action, "tasks", []*string{arn("ecs", "task/"+b.topo.ECS.Cluster+"/*")}, nil)
		case action == "ecs:TagResource" && e != nil:
			// Only the tags RunTask puts on the tasks it starts.
			add(action, "tag", []*string{arn("ecs", "task/"+b.topo.ECS.Cluster+"/*")},
				&map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RunTask"}})
		case action == "ecs:ListTasks" && e != nil:
			// ListTasks is authorized on container instances, which Fargate
			// tasks have none of: AWS requires "*", narrowed to our cluster.
			add(action, "list", []*string{jsii.String("*")}, &map[string]any{"ArnEquals": map[string]any{"ecs:cluster": e.cluster.ClusterArn()}})
		case action == "iam:PassRole" && e != nil:
			add(action, "pass", e.passable, &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}})
		case action == "events:PutEvents":
			add(action, "bus", []*string{arn("events", "event-bus/default")}, nil)
		case prefix == "ec2":
			grants := b.ec2Scope(op, arn)
			if len(grants) == 0 {
				return fmt.Errorf("stack: %s calls %s, which the stack does not know how to scope: add a case to ec2Scope (deploy/cdk/stack)", who, action)
			}
			for _, g := range grants {
				add(action, g.id, g.res, g.cond)
			}
		default:
			return fmt.Errorf("stack: %s calls %s, which the stack does not know how to scope: add a case to grant (deploy/cdk/stack)", who, action)
		}
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if len(resourcesOf[id]) == 0 {
			return fmt.Errorf("stack: %s calls %v but declares no resource for it", who, groups[id])
		}
		res := resourcesOf[id]
		st := &awsiam.PolicyStatementProps{Actions: jsii.Strings(groups[id]...), Resources: &res}
		if c := conditions[id]; c != nil {
			st.Conditions = c
		}
		role.AddToPolicy(awsiam.NewPolicyStatement(st))
	}
	if slices.ContainsFunc(ids, func(id string) bool {
		return id == "ssm-reads" || id == "ssm-writes" || id == "tasks" || id == "tag" || id == "taskdef" || id == "objects" || id == "any" || id == "list" || strings.HasPrefix(id, "ec2-")
	}) {
		b.nag(role, "AwsSolutions-IAM5", "wildcards only where the names are not known at deploy time: parameters under "+b.topo.ParameterRoot()+"/gateways/<id>/, objects of our bucket, tasks of our cluster, revisions of the recorder's task definition; the gateway's instances, volumes and snapshots by its tag (a replacement has new ids); \"*\" only for actions AWS authorizes on no resource (ssm:DescribeParameters; ecs:ListTasks, conditioned on our cluster; ec2:Describe*)")
	}
	return nil
}

// ec2Grant is one statement's share of an EC2 action: the resources of
// one type it acts on and the condition they must meet.
type ec2Grant struct {
	id   string
	res  []*string
	cond *map[string]any
}

// ec2Scope is where an EC2 action of the gateway's recovery and snapshots
// (the health-sentinel's internal/adapters/ec2) may act. EC2 authorizes an
// action on every resource it touches, each against its own statement:
// existing ones must carry the gateway's tag (its instance, its AMIs),
// new ones must be created with it, and a replacement may start only in
// the gateway's subnet and security group, from one of the gateway's own
// AMIs. Statements never mix conditions on existing and new resources.
// nil for an action nobody has scoped yet.
func (b *builder) ec2Scope(op string, arn func(service, resource string) *string) []ec2Grant {
	tagged := &map[string]any{"StringEquals": map[string]any{"ec2:ResourceTag/" + GatewayTag: GatewayID}}
	requestTagged := &map[string]any{"StringEquals": map[string]any{"aws:RequestTag/" + GatewayTag: GatewayID}}
	// AMIs and snapshots have no account in their ARN.
	noAccount := func(resource string) *string {
		return awscdk.Arn_Format(&awscdk.ArnComponents{Service: jsii.String("ec2"), Account: jsii.String(""), Resource: jsii.String(resource)}, b.stack)
	}
	instances := arn("ec2", "instance/*")
	images, snapshots := noAccount("image/*"), noAccount("snapshot/*")
	gatewayInstances := ec2Grant{"ec2-instance", []*string{instances}, tagged}
	switch {
	case strings.HasPrefix(op, "Describe"):
		// EC2's Describe actions support no resource-level permissions: AWS requires "*".
		return []ec2Grant{{"ec2-describe", []*string{jsii.String("*")}, nil}}
	case op == "RebootInstances" || op == "TerminateInstances":
		return []ec2Grant{gatewayInstances}
	case op == "CreateImage":
		return []ec2Grant{
			gatewayInstances, // of the gateway's instance only,
			{"ec2-image-new", []*string{images}, requestTagged}, // an AMI carrying its tag,
			// and the AMI's EBS snapshots, which the call creates untagged
			// (the adapter tags the image only): no condition can name them.
			{"ec2-image-snapshots", []*string{snapshots}, nil},
		}
	case op == "DeregisterImage":
		return []ec2Grant{{"ec2-image", []*string{images}, tagged}}
	case op == "DeleteSnapshot":
		// The snapshots behind the gateway's AMIs carry no tag (see
		// CreateImage): snapshots of this account (no other can be deleted).
		return []ec2Grant{{"ec2-snapshot-delete", []*string{snapshots}, nil}}
	case op == "CreateTags":
		// Only as RunInstances or CreateImage creates, with the gateway's tag.
		return []ec2Grant{{"ec2-tag", []*string{instances, images}, &map[string]any{
			"StringEquals": map[string]any{"ec2:CreateAction": []string{"CreateImage", "RunInstances"}, "aws:RequestTag/" + GatewayTag: GatewayID}}}}
	case op == "RunInstances":
		// No iam:PassRole: the gateway instance has no instance profile,
		// so the replacement, a copy of it, passes none.
		return []ec2Grant{
			{"ec2-run-new", []*string{instances}, requestTagged}, // a new instance with the gateway's tag,
			// its volumes and network interface, created with it (the adapter
			// tags the instance only; they land in the subnet below),
			{"ec2-run-parts", []*string{arn("ec2", "volume/*"), arn("ec2", "network-interface/*")}, nil},
			// in the gateway's subnet and security group,
			{"ec2-run-network", []*string{arn("ec2", "subnet/"+*b.gw.subnet), arn("ec2", "security-group/"+*b.gw.sg.SecurityGroupId())}, nil},
			// from one of the gateway's AMIs (the sentinel's snapshots).
			{"ec2-image", []*string{images}, tagged},
		}
	case op == "AssociateAddress":
		// The gateway's Elastic IP, onto one of its instances.
		return []ec2Grant{gatewayInstances, {"ec2-address", []*string{arn("ec2", "elastic-ip/"+*b.gw.allocation)}, nil}}
	}
	return nil
}

// suppressCustomResourceFunction covers what CDK itself adds: the one
// function behind every AwsCustomResource (a singleton at the stack's root).
func (b *builder) suppressCustomResourceFunction() error {
	fn := b.stack.Node().TryFindChild(jsii.String(customResourceFunctionID))
	if fn == nil {
		return fmt.Errorf("stack: CDK's custom resource function %s not found: the nag suppressions for it need its new id", customResourceFunctionID)
	}
	b.nag(fn, "AwsSolutions-IAM4", "CDK's custom resource function runs with AWSLambdaBasicExecutionRole, AWS's policy for writing its own logs")
	return nil
}

// customResourceFunctionID is the construct id CDK gives AwsCustomResource's
// singleton function.
const customResourceFunctionID = "AWS679f53fac002430cb0da5b7982bd2287"

// nag suppresses rule id on c and everything under it, with its reason.
// Suppressions are applied when the stack is complete: CDK adds children
// (a role's default policy) after the construct itself.
func (b *builder) nag(c constructs.IConstruct, id, reason string) {
	b.suppressions = append(b.suppressions, func() {
		cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{{Id: jsii.String(id), Reason: jsii.String(reason)}}, jsii.Bool(true))
	})
}

func camel(s string) string {
	var out strings.Builder
	for _, part := range strings.Split(s, "-") {
		if part != "" {
			out.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return out.String()
}
