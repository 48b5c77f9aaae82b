package ec2_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"mediagw/services/health-sentinel/internal/adapters/ec2"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// gateway is one gateway's instance and Elastic IP in the emulator.
type gateway struct {
	id, instance, allocation, eip, subnet, sg string
}

// setup starts an instance tagged for a new gateway in its own subnet and
// security group, with a tagged Elastic IP associated.
func setup(t *testing.T, c *awsec2.Client) gateway {
	t.Helper()
	ctx := t.Context()
	g := gateway{id: awstest.Name("gw")}
	imgs, err := c.DescribeImages(ctx, &awsec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("base images: %v (%d)", err, len(imgs.Images))
	}
	vpc, err := c.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubnet(ctx, &awsec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.9.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := c.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{GroupName: aws.String(g.id), Description: aws.String("gw"), VpcId: vpc.Vpc.VpcId})
	if err != nil {
		t.Fatal(err)
	}
	g.subnet, g.sg = aws.ToString(sub.Subnet.SubnetId), aws.ToString(sg.GroupId)
	run, err := c.RunInstances(ctx, &awsec2.RunInstancesInput{
		ImageId: imgs.Images[0].ImageId, InstanceType: types.InstanceTypeC5Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: sub.Subnet.SubnetId, SecurityGroupIds: []string{g.sg},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String(ec2.TagGateway), Value: aws.String(g.id)}, {Key: aws.String("Name"), Value: aws.String("gateway " + g.id)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.instance = aws.ToString(run.Instances[0].InstanceId)
	addr, err := c.AllocateAddress(ctx, &awsec2.AllocateAddressInput{Domain: types.DomainTypeVpc,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeElasticIp, Tags: []types.Tag{
			{Key: aws.String(ec2.TagGateway), Value: aws.String(g.id)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	g.allocation, g.eip = aws.ToString(addr.AllocationId), aws.ToString(addr.PublicIp)
	if _, err := c.AssociateAddress(ctx, &awsec2.AssociateAddressInput{AllocationId: addr.AllocationId, InstanceId: aws.String(g.instance)}); err != nil {
		t.Fatal(err)
	}
	return g
}

func instance(t *testing.T, c *awsec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe %s: %v", id, err)
	}
	return out.Reservations[0].Instances[0]
}

func client(t *testing.T) *awsec2.Client { return awsec2.NewFromConfig(awstest.Config(t)) }

func TestStatusAndReboot(t *testing.T) {
	c := client(t)
	g := setup(t, c)
	e := ec2.New(c, ec2.Options{Poll: 50 * time.Millisecond})
	st, err := e.Status(t.Context(), g.id)
	if err != nil {
		t.Fatal(err)
	}
	if st.InstanceID != g.instance || st.ElasticIP != g.eip || st.Detail == "" {
		t.Fatalf("status %+v", st)
	}
	if st.OK != nil && !*st.OK {
		t.Fatalf("a running instance reported impaired: %+v", st)
	}
	if id, err := e.Reboot(t.Context(), g.id); err != nil || id != g.instance {
		t.Fatalf("reboot: %s %v", id, err)
	}
	if _, err := c.StopInstances(t.Context(), &awsec2.StopInstancesInput{InstanceIds: []string{g.instance}}); err != nil {
		t.Fatal(err)
	}
	st, err = e.Status(t.Context(), g.id)
	if err != nil || st.OK == nil || *st.OK {
		t.Fatalf("stopped instance: %+v %v, want not OK", st, err)
	}
	if _, err := e.Status(t.Context(), awstest.Name("nogw")); !errors.Is(err, ec2.ErrNotFound) {
		t.Fatalf("unknown gateway: %v", err)
	}
}

func TestSnapshotsTakenListedDeleted(t *testing.T) {
	c := client(t)
	g := setup(t, c)
	e := ec2.New(c, ec2.Options{})
	s, err := e.Take(t.Context(), g.id)
	if err != nil {
		t.Fatal(err)
	}
	if s.InstanceID != g.instance || !s.Healthy {
		t.Fatalf("taken %+v", s)
	}
	list, err := e.List(t.Context(), g.id)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if l := list[0]; l.ID != s.ID || !l.Healthy || !l.Available || l.InstanceID != g.instance || l.Created.IsZero() {
		t.Fatalf("listed %+v", l)
	}
	if rp, ok := domain.NewestRestorePoint(list); !ok || rp.ID != s.ID {
		t.Fatalf("restore point %v %v", rp, ok)
	}
	// Another gateway's snapshots are not listed.
	if other, err := e.List(t.Context(), awstest.Name("nogw")); err != nil || len(other) != 0 {
		t.Fatalf("other gateway: %v %v", other, err)
	}
	img, err := c.DescribeImages(t.Context(), &awsec2.DescribeImagesInput{ImageIds: []string{s.ID}})
	if err != nil || len(img.Images) != 1 {
		t.Fatalf("describe image: %v", err)
	}
	var ebs []string
	for _, bd := range img.Images[0].BlockDeviceMappings {
		if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
			ebs = append(ebs, *bd.Ebs.SnapshotId)
		}
	}
	if len(ebs) == 0 {
		t.Fatal("the image has no EBS snapshot behind it")
	}
	if err := e.Delete(t.Context(), list[0]); err != nil {
		t.Fatal(err)
	}
	for _, id := range ebs {
		if _, err := c.DescribeSnapshots(t.Context(), &awsec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}); err == nil {
			t.Fatalf("EBS snapshot %s still there after the delete", id)
		}
	}
	if list, err = e.List(t.Context(), g.id); err != nil || len(list) != 0 {
		t.Fatalf("after delete: %v %+v", err, list)
	}
	// Deleting again is fine.
	if err := e.Delete(t.Context(), s); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestReplacementMovesTheElasticIPAndRetiresTheOldInstance(t *testing.T) {
	c := client(t)
	g := setup(t, c)
	e := ec2.New(c, ec2.Options{Poll: 50 * time.Millisecond})
	ctx := t.Context()
	snap, err := e.Take(ctx, g.id)
	if err != nil {
		t.Fatal(err)
	}
	var saved []domain.Replacement
	save := func(r domain.Replacement) error { saved = append(saved, r); return nil }
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r, err := e.Replace(rctx, g.id, snap.ID, nil, save)
	if err != nil {
		t.Fatal(err)
	}
	if r.OldInstanceID != g.instance || r.NewInstanceID == "" || r.NewInstanceID == g.instance || r.ImageID != snap.ID || r.ElasticIP != g.eip {
		t.Fatalf("replacement %+v", r)
	}
	if len(saved) != 1 || saved[0].NewInstanceID != r.NewInstanceID {
		t.Fatalf("saved %+v: the new instance must be saved as soon as it is known", saved)
	}
	nw := instance(t, c, r.NewInstanceID)
	if nw.InstanceType != types.InstanceTypeC5Large || aws.ToString(nw.SubnetId) != g.subnet || aws.ToString(nw.ImageId) != snap.ID ||
		len(nw.SecurityGroups) != 1 || aws.ToString(nw.SecurityGroups[0].GroupId) != g.sg {
		t.Fatalf("new instance: type %s subnet %s image %s groups %v", nw.InstanceType, aws.ToString(nw.SubnetId), aws.ToString(nw.ImageId), nw.SecurityGroups)
	}
	tags := map[string]string{}
	for _, tg := range nw.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags[ec2.TagGateway] != g.id || tags[ec2.TagReplaces] != g.instance || tags["Name"] != "gateway "+g.id {
		t.Fatalf("new instance tags %v", tags)
	}
	addrs, err := c.DescribeAddresses(ctx, &awsec2.DescribeAddressesInput{AllocationIds: []string{g.allocation}})
	if err != nil || aws.ToString(addrs.Addresses[0].InstanceId) != r.NewInstanceID {
		t.Fatalf("Elastic IP on %v (%v), want %s", aws.ToString(addrs.Addresses[0].InstanceId), err, r.NewInstanceID)
	}
	// The gateway's instance is now the new one.
	if st, err := e.Status(ctx, g.id); err != nil || st.InstanceID != r.NewInstanceID {
		t.Fatalf("status after: %+v %v", st, err)
	}
	// Tried again, from nothing known (a sentinel that died before saving)
	// or from what was saved: the same instance, no second one.
	again, err := e.Replace(rctx, g.id, snap.ID, &domain.Replacement{OldInstanceID: g.instance}, save)
	if err != nil || again.NewInstanceID != r.NewInstanceID {
		t.Fatalf("again: %+v %v", again, err)
	}
	again, err = e.Replace(rctx, g.id, snap.ID, &r, save)
	if err != nil || again.NewInstanceID != r.NewInstanceID {
		t.Fatalf("again from saved: %+v %v", again, err)
	}
	live, err := c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + ec2.TagGateway), Values: []string{g.id}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rs := range live.Reservations {
		n += len(rs.Instances)
	}
	if n != 2 {
		t.Fatalf("%d live instances of the gateway before retiring, want 2 (old and one new)", n)
	}
	if err := e.Retire(ctx, g.id, r); err != nil {
		t.Fatal(err)
	}
	if st := instance(t, c, g.instance).State.Name; st != types.InstanceStateNameTerminated && st != types.InstanceStateNameShuttingDown {
		t.Fatalf("old instance is %s, want terminated", st)
	}
	if st := instance(t, c, r.NewInstanceID).State.Name; st != types.InstanceStateNameRunning {
		t.Fatalf("new instance is %s", st)
	}
	if err := e.Retire(ctx, g.id, r); err != nil {
		t.Fatalf("second retire: %v", err)
	}
}
