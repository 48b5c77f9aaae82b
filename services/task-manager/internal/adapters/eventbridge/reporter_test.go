package eventbridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"mediagw/services/task-manager/internal/app"
)

// fakeBus answers PutEvents with the next of its answers.
type fakeBus struct {
	answers []func(in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error)
	calls   []*eventbridge.PutEventsInput
}

func (f *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.calls = append(f.calls, in)
	next := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	return next(in)
}

func ok(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
	return &eventbridge.PutEventsOutput{Entries: []ebtypes.PutEventsResultEntry{{EventId: aws.String("e1")}}}, nil
}

func refused(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
	return &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []ebtypes.PutEventsResultEntry{{
		ErrorCode: aws.String("ThrottlingException"), ErrorMessage: aws.String("slow down")}}}, nil
}

func reporter(bus *fakeBus) *Reporter {
	r := NewReporter(bus, "")
	r.FirstRetry, r.MaxElapsed = time.Millisecond, 5*time.Second
	return r
}

// The event is put as ECS would put it, on the default bus.
func TestReportPutsAnECSTaskStateChange(t *testing.T) {
	bus := &fakeBus{answers: []func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error){ok}}
	d := app.TaskStateChange{ClusterArn: app.LocalClusterArn("mediagw"), TaskArn: "local:abc", Group: app.TaskGroup("cam-1"), LastStatus: app.TaskStatusStopped}
	if err := reporter(bus).Report(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if len(bus.calls) != 1 || len(bus.calls[0].Entries) != 1 {
		t.Fatalf("calls %+v", bus.calls)
	}
	e := bus.calls[0].Entries[0]
	var got app.TaskStateChange
	if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &got); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(e.Source) != "mediagw.task-manager" || aws.ToString(e.DetailType) != "ECS Task State Change" ||
		e.EventBusName != nil || got.TaskArn != "local:abc" || got.Group != "recorder:cam-1" || e.Resources[0] != "local:abc" {
		t.Errorf("entry %+v, detail %+v", e, got)
	}
}

// An entry the bus refused inside a successful answer is put again (the
// SDK's retryer cannot see it); a failed call, which the SDK has already
// retried, is not.
func TestReportRetriesRefusedEntriesOnly(t *testing.T) {
	bus := &fakeBus{answers: []func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error){refused, refused, ok}}
	if err := reporter(bus).Report(context.Background(), app.TaskStateChange{TaskArn: "local:x"}); err != nil {
		t.Fatal(err)
	}
	if len(bus.calls) != 3 {
		t.Errorf("%d calls for two refusals and a success, want 3", len(bus.calls))
	}

	failed := errors.New("AccessDeniedException: no")
	bus = &fakeBus{answers: []func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error){
		func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) { return nil, failed }}}
	err := reporter(bus).Report(context.Background(), app.TaskStateChange{TaskArn: "local:y"})
	if !errors.Is(err, failed) || len(bus.calls) != 1 {
		t.Errorf("err %v after %d calls, want the SDK's error after 1", err, len(bus.calls))
	}

	bus = &fakeBus{answers: []func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error){refused}}
	r := reporter(bus)
	r.MaxElapsed = 50 * time.Millisecond
	if err := r.Report(context.Background(), app.TaskStateChange{TaskArn: "local:z"}); err == nil || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Errorf("err %v, want the refusal once the retries are spent", err)
	}
}
