// Package ecstest prepares the emulator for ECS launcher tests.
package ecstest

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
)

// Network returns a subnet and a security group of the emulator's default VPC.
func Network(t testing.TB, cfg aws.Config) (subnet, securityGroup string) {
	t.Helper()
	c := ec2.NewFromConfig(cfg)
	ctx := context.Background()
	subs, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(subs.Subnets) == 0 {
		t.Fatalf("emulator subnets: %v", err)
	}
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil || len(sgs.SecurityGroups) == 0 {
		t.Fatalf("emulator security groups: %v", err)
	}
	return aws.ToString(subs.Subnets[0].SubnetId), aws.ToString(sgs.SecurityGroups[0].GroupId)
}

// TaskDefinition registers a revision of the applied recorder family whose
// container also states its memory: moto's RunTask needs that, while
// Fargate is content with the task-level memory provision.Apply registers.
func TaskDefinition(t testing.TB, cfg aws.Config, res provision.Resources) string {
	t.Helper()
	e := topology.Default().ECS
	family := res.Cluster[:len(res.Cluster)-len(e.Cluster)] + e.RecorderTaskFamily
	mem, err := strconv.Atoi(e.RecorderMemory)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ecs.NewFromConfig(cfg).RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(family),
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode:             ecstypes.NetworkModeAwsvpc,
		Cpu:                     aws.String(e.RecorderCPU),
		Memory:                  aws.String(e.RecorderMemory),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String(e.RecorderContainer), Image: aws.String(e.RecorderImage), Essential: aws.Bool(true),
			Memory: aws.Int32(int32(mem)),
		}},
	})
	if err != nil {
		t.Fatalf("register task definition: %v", err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}
