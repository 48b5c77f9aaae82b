// Package ctl wires mediagw-ctl: its readers (internal/ports/cli.Sources)
// on the DynamoDB, S3, SSM and SQS adapters. Apart from the service's wiring so
// that each binary links only the AWS clients it calls.
package ctl

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/pkg/awsenv"
	budgetstore "mediagw/pkg/loginbudget/dynamodb"
	ddbadapter "mediagw/services/task-manager/internal/adapters/dynamodb"
	s3adapter "mediagw/services/task-manager/internal/adapters/s3"
	sqsadapter "mediagw/services/task-manager/internal/adapters/sqs"
	ssmadapter "mediagw/services/task-manager/internal/adapters/ssm"
	"mediagw/services/task-manager/internal/ports/cli"
)

// Open builds mediagw-ctl's readers on the AWS configuration of the
// SDK chain (AWS_REGION, AWS_ENDPOINT_URL for the emulator, credentials).
func Open(ctx context.Context, s cli.Settings) (cli.Sources, error) {
	cfg, err := awsenv.Load(ctx)
	if err != nil {
		return cli.Sources{}, fmt.Errorf("aws configuration: %w", err)
	}
	return Sources(cfg, s), nil
}

// Sources builds mediagw-ctl's readers on cfg.
func Sources(cfg aws.Config, s cli.Settings) cli.Sources {
	db := dynamodb.NewFromConfig(cfg)
	// An emulator serves buckets by path, not by host name. o.BaseEndpoint
	// is S3's endpoint as resolved (AWS_ENDPOINT_URL_S3, else
	// AWS_ENDPOINT_URL), not only the general one.
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = o.BaseEndpoint != nil })
	return cli.Sources{
		Channels:   ddbadapter.NewDeviceMedia(db, s.DeviceMediaURLTable),
		Devices:    ddbadapter.NewIPCamera(db, s.IPCameraTable),
		Recordings: s3adapter.NewRecordings(s3c, s.RecordingsBucket, s.KeyPrefix),
		Gateways:   ssmadapter.NewGateways(ssm.NewFromConfig(cfg), s.ParameterRoot),
		Logins:     budgetstore.New(db, s.LoginBudgetTable),
		Incidents:  ddbadapter.NewIncidents(db, s.IncidentsTable),
		Alerts:     sqsadapter.NewAlerts(sqs.NewFromConfig(cfg), s.AlertMailQueue, "mediagw-alert-mail"),
	}
}
