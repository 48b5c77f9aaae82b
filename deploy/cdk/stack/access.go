package stack

// Access is what one binary's code does with AWS: the IAM actions of the
// SDK operations it calls and the topology resources it declares.
// TestRolesMatchCode derives both from the code (deploy/cdk/codescan) and
// fails, printing the right entry, when this table says anything else; the
// stack grants exactly these actions, each on the resources of its kind.
type Access struct {
	Actions []string
	Tables  []string
	Queues  []string
	Topics  []string
	Buckets []string
	// SSMWrites are the parameter names (under <root>/gateways/<id>/) the
	// binary writes; everything else under <root>/gateways/ it only reads.
	SSMWrites []string
	// ParameterRoot: the binary reads PARAMETER_ROOT (where the gateways'
	// parameters are), for its own SSM calls or for the recorders it starts.
	ParameterRoot bool
}

// Services are the four control services, each a Fargate service with a
// role of its own, by binary name (services/<name>/cmd/<name>).
var Services = map[string]Access{
	"configurator": {
		Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "sns:Publish",
			"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage",
			"ssm:DeleteParameter", "ssm:DescribeParameters", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:PutParameter"},
		Tables:        []string{"mediagw-login-budget"},
		Queues:        []string{"mediagw-configurator-gateway-events"},
		Topics:        []string{"mediagw-gateway-events"},
		SSMWrites:     []string{"PendingConfiguration", "PendingReboot"},
		ParameterRoot: true,
	},
	"device-watcher": {
		Actions: []string{"dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem",
			"sns:Publish", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage", "ssm:GetParameter"},
		Tables:        []string{"deviceMediaURL", "mediagw-leases", "mediagw-login-budget"},
		Queues:        []string{"mediagw-device-watcher-gateway-events"},
		Topics:        []string{"mediagw-device-events", "mediagw-gateway-events"},
		ParameterRoot: true,
	},
	"task-manager": {
		Actions: []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan",
			"ecs:DescribeTasks", "ecs:ListTasks", "ecs:RunTask", "ecs:StopTask", "ecs:TagResource", "events:PutEvents", "iam:PassRole",
			"sns:Publish", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"},
		Tables: []string{"deviceMediaURL", "ip-camera", "mediagw-login-budget"},
		Queues: []string{"mediagw-task-manager-device-events", "mediagw-task-manager-task-state"},
		Topics: []string{"mediagw-alerts", "mediagw-task-events"},
		// Passed to the recorders (RECORDER_BUCKET); the task-manager
		// itself calls no S3 operation, so its role has none.
		Buckets:       []string{"mediagw-recordings"},
		ParameterRoot: true,
	},
	"health-sentinel": {
		Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem",
			// Recovery and snapshots of the gateway, scoped to its tag (stack.go, ec2Scope).
			"ec2:AssociateAddress", "ec2:CreateImage", "ec2:CreateTags", "ec2:DeleteSnapshot", "ec2:DeregisterImage",
			"ec2:DescribeAddresses", "ec2:DescribeImages", "ec2:DescribeInstanceStatus", "ec2:DescribeInstances",
			"ec2:RebootInstances", "ec2:RunInstances", "ec2:TerminateInstances",
			"s3:ListBucket", "sns:ListSubscriptionsByTopic", "sns:Publish", "sns:Subscribe",
			"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage",
			"ssm:GetParameter"},
		Tables:  []string{"deviceMediaURL", "mediagw-incidents", "mediagw-leases", "mediagw-login-budget"},
		Queues:  []string{"mediagw-health-sentinel-events", "mediagw-health-sentinel-task-state"},
		Topics:  []string{"mediagw-alert-email", "mediagw-gateway-events"},
		Buckets: []string{"mediagw-recordings"},
		// The gateways' passwords, for the health check's logins.
		ParameterRoot: true,
	},
}

// Recorder is the recording task's access (services/recorder/cmd/recorder).
var Recorder = Access{
	Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "s3:AbortMultipartUpload", "s3:PutObject", "ssm:GetParameter"},
	Tables:  []string{"mediagw-login-budget"},
	// Not declared in its code: the task-manager hands it the bucket's
	// name (RECORDER_BUCKET).
	Buckets: []string{"mediagw-recordings"},
}
