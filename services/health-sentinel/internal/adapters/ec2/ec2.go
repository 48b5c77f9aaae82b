// Package ec2 is the health-sentinel's adapter to a gateway's EC2 instance
// (recovery.Instances) and its snapshots (recovery.Snapshots).
//
// A gateway's resources are found by tags, so nothing else has to be
// configured per gateway: its Elastic IP is the address tagged
// mediagw:gateway=<id>, its instance the one that address is associated
// with (or, when it is associated with none, the newest live instance
// with the same tag). A replacement copies the old instance's type,
// subnet, security groups, key pair, instance profile and tags.
// Snapshots are AMIs made with CreateImage (no reboot), with the EBS
// snapshots behind them; the AMI is tagged mediagw:gateway,
// mediagw:snapshot=rpo, mediagw:healthy=true and mediagw:instance, and
// deleting one deregisters it and deletes its EBS snapshots.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// Tags this adapter reads and writes.
const (
	TagGateway  = "mediagw:gateway"  // on the instance, its Elastic IP, its snapshots
	TagReplaces = "mediagw:replaces" // on a replacement: the instance it replaces
	TagSnapshot = "mediagw:snapshot" // on a snapshot: "rpo" (taken by the schedule)
	TagHealthy  = "mediagw:healthy"  // on a snapshot: "true", taken while the gateway was healthy
	TagInstance = "mediagw:instance" // on a snapshot: the instance it was taken of
)

// Client is what the adapter needs of EC2.
type Client interface {
	DescribeInstances(ctx context.Context, in *awsec2.DescribeInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, in *awsec2.DescribeInstanceStatusInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeInstanceStatusOutput, error)
	RebootInstances(ctx context.Context, in *awsec2.RebootInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.RebootInstancesOutput, error)
	RunInstances(ctx context.Context, in *awsec2.RunInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.RunInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *awsec2.TerminateInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.TerminateInstancesOutput, error)
	DescribeAddresses(ctx context.Context, in *awsec2.DescribeAddressesInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeAddressesOutput, error)
	AssociateAddress(ctx context.Context, in *awsec2.AssociateAddressInput, opts ...func(*awsec2.Options)) (*awsec2.AssociateAddressOutput, error)
	CreateImage(ctx context.Context, in *awsec2.CreateImageInput, opts ...func(*awsec2.Options)) (*awsec2.CreateImageOutput, error)
	DescribeImages(ctx context.Context, in *awsec2.DescribeImagesInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeImagesOutput, error)
	DeregisterImage(ctx context.Context, in *awsec2.DeregisterImageInput, opts ...func(*awsec2.Options)) (*awsec2.DeregisterImageOutput, error)
	DeleteSnapshot(ctx context.Context, in *awsec2.DeleteSnapshotInput, opts ...func(*awsec2.Options)) (*awsec2.DeleteSnapshotOutput, error)
}

// EC2 implements recovery.Instances and recovery.Snapshots.
type EC2 struct {
	c    Client
	poll time.Duration
	now  func() time.Time
	log  *slog.Logger
}

// Options tune EC2.
type Options struct {
	// Poll is how often a replacement looks whether its instance runs (default 5 s).
	Poll   time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// New returns the adapter over c.
func New(c Client, o Options) *EC2 {
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &EC2{c: c, poll: o.Poll, now: o.Now, log: o.Logger}
}

// ErrNotFound: the gateway has no Elastic IP or instance tagged for it.
var ErrNotFound = errors.New("not found")

func tagFilter(key, value string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + key), Values: []string{value}}
}

// address is the gateway's Elastic IP.
func (e *EC2) address(ctx context.Context, gw string) (types.Address, error) {
	out, err := e.c.DescribeAddresses(ctx, &awsec2.DescribeAddressesInput{Filters: []types.Filter{tagFilter(TagGateway, gw)}})
	if err != nil {
		return types.Address{}, fmt.Errorf("describe addresses of %s: %w", gw, err)
	}
	switch len(out.Addresses) {
	case 0:
		return types.Address{}, fmt.Errorf("gateway %s: no Elastic IP tagged %s=%s: %w", gw, TagGateway, gw, ErrNotFound)
	case 1:
		return out.Addresses[0], nil
	}
	return types.Address{}, fmt.Errorf("gateway %s: %d Elastic IPs tagged %s=%s, want one", gw, len(out.Addresses), TagGateway, gw)
}

var liveStates = []string{"pending", "running", "stopping", "stopped"}

func (e *EC2) describe(ctx context.Context, in *awsec2.DescribeInstancesInput) ([]types.Instance, error) {
	var all []types.Instance
	p := awsec2.NewDescribeInstancesPaginator(e.c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			all = append(all, r.Instances...)
		}
	}
	return all, nil
}

// instance is the gateway's current instance and its Elastic IP (the
// address may be zero when none is tagged).
func (e *EC2) instance(ctx context.Context, gw string) (types.Instance, types.Address, error) {
	addr, aerr := e.address(ctx, gw)
	if aerr != nil && !errors.Is(aerr, ErrNotFound) {
		return types.Instance{}, addr, aerr
	}
	if id := aws.ToString(addr.InstanceId); id != "" {
		in, err := e.describe(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return types.Instance{}, addr, fmt.Errorf("describe instance %s of %s: %w", id, gw, err)
		}
		if len(in) == 1 {
			return in[0], addr, nil
		}
	}
	in, err := e.describe(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter(TagGateway, gw),
		{Name: aws.String("instance-state-name"), Values: liveStates}}})
	if err != nil {
		return types.Instance{}, addr, fmt.Errorf("describe instances of %s: %w", gw, err)
	}
	if len(in) == 0 {
		return types.Instance{}, addr, fmt.Errorf("gateway %s: no live instance tagged %s=%s: %w", gw, TagGateway, gw, ErrNotFound)
	}
	slices.SortFunc(in, func(a, b types.Instance) int { return aws.ToTime(b.LaunchTime).Compare(aws.ToTime(a.LaunchTime)) })
	return in[0], addr, nil
}

// Status is the gateway's instance and its status checks: pending is no
// verdict; stopping, stopped or gone is a failure; either check impaired is a failure; both ok is fine; anything
// else (initializing, insufficient data) is no verdict.
func (e *EC2) Status(ctx context.Context, gw string) (st recovery.InstanceStatus, err error) {
	in, addr, err := e.instance(ctx, gw)
	if err != nil {
		return st, err
	}
	st.InstanceID, st.ElasticIP = aws.ToString(in.InstanceId), aws.ToString(addr.PublicIp)
	state := types.InstanceStateNameRunning
	if in.State != nil {
		state = in.State.Name
	}
	switch state {
	case types.InstanceStateNameRunning:
	case types.InstanceStateNamePending:
		// Starting (a reboot, a replacement): no verdict yet.
		st.Detail = fmt.Sprintf("instance %s is pending", st.InstanceID)
		return st, nil
	default:
		st.OK, st.Detail = aws.Bool(false), fmt.Sprintf("instance %s is %s", st.InstanceID, state)
		return st, nil
	}
	out, err := e.c.DescribeInstanceStatus(ctx, &awsec2.DescribeInstanceStatusInput{InstanceIds: []string{st.InstanceID}, IncludeAllInstances: aws.Bool(true)})
	if err != nil {
		return st, fmt.Errorf("describe instance status %s: %w", st.InstanceID, err)
	}
	if len(out.InstanceStatuses) == 0 {
		st.Detail = fmt.Sprintf("instance %s is running; no status checks yet", st.InstanceID)
		return st, nil
	}
	s := out.InstanceStatuses[0]
	sys, ins := summary(s.SystemStatus), summary(s.InstanceStatus)
	st.Detail = fmt.Sprintf("instance %s is running; system status %s, instance status %s", st.InstanceID, sys, ins)
	switch {
	case sys == types.SummaryStatusImpaired || ins == types.SummaryStatusImpaired:
		st.OK = aws.Bool(false)
	case sys == types.SummaryStatusOk && ins == types.SummaryStatusOk:
		st.OK = aws.Bool(true)
	}
	return st, nil
}

func summary(s *types.InstanceStatusSummary) types.SummaryStatus {
	if s == nil || s.Status == "" {
		return "unknown"
	}
	return s.Status
}

// Reboot reboots the gateway's instance.
func (e *EC2) Reboot(ctx context.Context, gw string) (string, error) {
	in, _, err := e.instance(ctx, gw)
	if err != nil {
		return "", err
	}
	id := aws.ToString(in.InstanceId)
	if _, err := e.c.RebootInstances(ctx, &awsec2.RebootInstancesInput{InstanceIds: []string{id}}); err != nil {
		return id, fmt.Errorf("reboot instance %s: %w", id, err)
	}
	e.log.InfoContext(ctx, "ec2: instance reboot asked", "gateway", gw, "instance", id)
	return id, nil
}

// Replace starts or continues the replacement of the gateway's instance
// from imageID: the new instance is found by its mediagw:replaces tag (or
// prev) before one is started, and RunInstances carries a client token
// made of the gateway and the old instance, so no try starts a second one.
// Once the new instance runs, the Elastic IP is associated with it
// (allowing reassociation: a no-op when already there).
func (e *EC2) Replace(ctx context.Context, gw, imageID string, prev *domain.Replacement, save func(domain.Replacement) error) (domain.Replacement, error) {
	var r domain.Replacement
	if prev != nil {
		r = *prev
	}
	addr, err := e.address(ctx, gw)
	if err != nil {
		return r, err
	}
	if r.OldInstanceID == "" {
		old, _, err := e.instance(ctx, gw)
		if err != nil {
			return r, err
		}
		r.OldInstanceID = aws.ToString(old.InstanceId)
	}
	if r.ImageID == "" {
		r.ImageID = imageID
	}
	if r.ImageID == "" {
		return r, errors.New("no image to start the replacement from")
	}
	if r.NewInstanceID == "" {
		id, err := e.startReplacement(ctx, gw, r)
		if err != nil {
			return r, err
		}
		r.NewInstanceID = id
		if err := save(r); err != nil {
			return r, err
		}
	}
	if err := e.awaitRunning(ctx, r.NewInstanceID); err != nil {
		return r, err
	}
	if _, err := e.c.AssociateAddress(ctx, &awsec2.AssociateAddressInput{AllocationId: addr.AllocationId,
		InstanceId: aws.String(r.NewInstanceID), AllowReassociation: aws.Bool(true)}); err != nil {
		return r, fmt.Errorf("associate Elastic IP %s with %s: %w", aws.ToString(addr.PublicIp), r.NewInstanceID, err)
	}
	r.ElasticIP = aws.ToString(addr.PublicIp)
	e.log.InfoContext(ctx, "ec2: Elastic IP moved to the replacement", "gateway", gw, "elastic_ip", r.ElasticIP,
		"new_instance", r.NewInstanceID, "old_instance", r.OldInstanceID)
	return r, nil
}

func (e *EC2) startReplacement(ctx context.Context, gw string, r domain.Replacement) (string, error) {
	existing, err := e.describe(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter(TagReplaces, r.OldInstanceID),
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
	if err != nil {
		return "", fmt.Errorf("look for a replacement of %s: %w", r.OldInstanceID, err)
	}
	if len(existing) > 0 {
		return aws.ToString(existing[0].InstanceId), nil
	}
	olds, err := e.describe(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{r.OldInstanceID}})
	if err != nil || len(olds) != 1 {
		return "", fmt.Errorf("describe the instance to replace %s: %w", r.OldInstanceID, errors.Join(err, ErrNotFound))
	}
	old := olds[0]
	var tags []types.Tag
	for _, t := range old.Tags {
		k := aws.ToString(t.Key)
		if strings.HasPrefix(k, "aws:") || k == TagReplaces {
			continue
		}
		tags = append(tags, t)
	}
	tags = append(tags, types.Tag{Key: aws.String(TagReplaces), Value: aws.String(r.OldInstanceID)})
	if !slices.ContainsFunc(tags, func(t types.Tag) bool { return aws.ToString(t.Key) == TagGateway }) {
		tags = append(tags, types.Tag{Key: aws.String(TagGateway), Value: aws.String(gw)})
	}
	in := &awsec2.RunInstancesInput{
		ImageId: aws.String(r.ImageID), InstanceType: old.InstanceType, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: old.SubnetId, KeyName: old.KeyName,
		ClientToken:       aws.String(clientToken(gw, r.OldInstanceID)),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}},
	}
	for _, g := range old.SecurityGroups {
		in.SecurityGroupIds = append(in.SecurityGroupIds, aws.ToString(g.GroupId))
	}
	if old.IamInstanceProfile != nil && old.IamInstanceProfile.Arn != nil {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: old.IamInstanceProfile.Arn}
	}
	out, err := e.c.RunInstances(ctx, in)
	if err != nil {
		return "", fmt.Errorf("run the replacement of %s from %s: %w", r.OldInstanceID, r.ImageID, err)
	}
	if len(out.Instances) != 1 {
		return "", fmt.Errorf("run the replacement of %s: %d instances started", r.OldInstanceID, len(out.Instances))
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	e.log.InfoContext(ctx, "ec2: replacement started", "gateway", gw, "new_instance", id, "old_instance", r.OldInstanceID,
		"image", r.ImageID, "type", old.InstanceType, "subnet", aws.ToString(old.SubnetId))
	return id, nil
}

// clientToken makes RunInstances idempotent per (gateway, old instance):
// at most 64 ASCII characters.
func clientToken(gw, old string) string {
	t := "mediagw-" + gw + "-" + old
	if len(t) > 64 {
		t = t[len(t)-64:]
	}
	return t
}

func (e *EC2) awaitRunning(ctx context.Context, id string) error {
	for {
		in, err := e.describe(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return fmt.Errorf("describe the replacement %s: %w", id, err)
		}
		if len(in) == 1 && in[0].State != nil {
			switch in[0].State.Name {
			case types.InstanceStateNameRunning:
				return nil
			case types.InstanceStateNamePending:
			default:
				return fmt.Errorf("the replacement %s is %s", id, in[0].State.Name)
			}
		}
		t := time.NewTimer(e.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("the replacement %s is not running yet: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// Retire terminates the old instance of a finished replacement; one
// already gone is fine.
func (e *EC2) Retire(ctx context.Context, gw string, r domain.Replacement) error {
	if r.OldInstanceID == "" || r.OldInstanceID == r.NewInstanceID {
		return nil
	}
	_, err := e.c.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{r.OldInstanceID}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminate %s: %w", r.OldInstanceID, err)
	}
	e.log.InfoContext(ctx, "ec2: old instance terminated", "gateway", gw, "instance", r.OldInstanceID)
	return nil
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// List is the gateway's snapshots (AMIs tagged by the schedule).
func (e *EC2) List(ctx context.Context, gw string) ([]domain.Snapshot, error) {
	out, err := e.c.DescribeImages(ctx, &awsec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []types.Filter{tagFilter(TagGateway, gw), tagFilter(TagSnapshot, "rpo")}})
	if err != nil {
		return nil, fmt.Errorf("describe images of %s: %w", gw, err)
	}
	snaps := make([]domain.Snapshot, 0, len(out.Images))
	for _, im := range out.Images {
		s := domain.Snapshot{ID: aws.ToString(im.ImageId), GatewayID: gw, Available: im.State == types.ImageStateAvailable}
		switch im.State {
		case types.ImageStateFailed, types.ImageStateError, types.ImageStateInvalid, types.ImageStateDeregistered:
			s.Failed = true
		}
		if t, err := time.Parse(time.RFC3339, aws.ToString(im.CreationDate)); err == nil {
			s.Created = t
		}
		for _, t := range im.Tags {
			switch aws.ToString(t.Key) {
			case TagHealthy:
				s.Healthy = aws.ToString(t.Value) == "true"
			case TagInstance:
				s.InstanceID = aws.ToString(t.Value)
			}
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// Take starts a snapshot of the gateway's current instance: CreateImage
// without a reboot (the gateway keeps recording), tagged healthy.
func (e *EC2) Take(ctx context.Context, gw string) (domain.Snapshot, error) {
	in, _, err := e.instance(ctx, gw)
	if err != nil {
		return domain.Snapshot{}, err
	}
	id := aws.ToString(in.InstanceId)
	now := e.now().UTC()
	tags := []types.Tag{
		{Key: aws.String(TagGateway), Value: aws.String(gw)},
		{Key: aws.String(TagSnapshot), Value: aws.String("rpo")},
		{Key: aws.String(TagHealthy), Value: aws.String("true")},
		{Key: aws.String(TagInstance), Value: aws.String(id)},
		{Key: aws.String("Name"), Value: aws.String("mediagw-" + gw + "-" + now.Format("20060102T150405Z"))},
	}
	out, err := e.c.CreateImage(ctx, &awsec2.CreateImageInput{
		InstanceId: aws.String(id), Name: aws.String("mediagw-" + gw + "-" + now.Format("20060102T150405Z")),
		Description: aws.String("mediagw health-sentinel snapshot of gateway " + gw + " (taken while healthy)"),
		NoReboot:    aws.Bool(true),
		// The image carries the tags; its EBS snapshots are found through
		// it when it is deleted. (Tagging the snapshots in the same call is
		// what AWS allows, but the emulator refuses it.)
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: tags}},
	})
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("create image of %s (%s): %w", id, gw, err)
	}
	return domain.Snapshot{ID: aws.ToString(out.ImageId), GatewayID: gw, InstanceID: id, Created: now, Healthy: true}, nil
}

// Delete deregisters the snapshot's image and deletes the EBS snapshots
// behind it; parts already gone are fine.
func (e *EC2) Delete(ctx context.Context, s domain.Snapshot) error {
	out, err := e.c.DescribeImages(ctx, &awsec2.DescribeImagesInput{ImageIds: []string{s.ID}})
	if isCode(err, "InvalidAMIID.NotFound") || (err == nil && len(out.Images) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe image %s: %w", s.ID, err)
	}
	var snapIDs []string
	for _, bd := range out.Images[0].BlockDeviceMappings {
		if bd.Ebs != nil && aws.ToString(bd.Ebs.SnapshotId) != "" {
			snapIDs = append(snapIDs, aws.ToString(bd.Ebs.SnapshotId))
		}
	}
	if _, err := e.c.DeregisterImage(ctx, &awsec2.DeregisterImageInput{ImageId: aws.String(s.ID)}); err != nil && !isCode(err, "InvalidAMIID.NotFound") {
		return fmt.Errorf("deregister image %s: %w", s.ID, err)
	}
	for _, id := range snapIDs {
		if _, err := e.c.DeleteSnapshot(ctx, &awsec2.DeleteSnapshotInput{SnapshotId: aws.String(id)}); err != nil && !isCode(err, "InvalidSnapshot.NotFound") {
			return fmt.Errorf("delete snapshot %s of image %s: %w", id, s.ID, err)
		}
	}
	return nil
}

var (
	_ recovery.Instances = (*EC2)(nil)
	_ recovery.Snapshots = (*EC2)(nil)
)
