package dynamodb

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func tables(t *testing.T) (*dynamodb.Client, provision.Resources) {
	t.Helper()
	cfg := awstest.Config(t)
	res, err := provision.Apply(context.Background(), cfg, topology.Default(), provision.Options{Prefix: awstest.Name("tmstore") + "-", Only: []string{"tables"}})
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg), res
}

func TestIPCameraRoundTripAndConditionalWrites(t *testing.T) {
	t.Parallel()
	db, res := tables(t)
	s := NewIPCamera(db, res.Tables["ip-camera"])
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

	if _, found, err := s.Get(ctx, "dev1"); err != nil || found {
		t.Fatalf("empty table: found=%v err=%v", found, err)
	}
	d := domain.Device{
		Index: "dev1", Gateway: "gw1", Want: domain.WantRecord, WantAt: now.Add(-time.Second), Status: domain.StatusRunning,
		Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://gw:554/Streaming/Channels/101"}, {Number: 2, MediaURL: "rtsp://gw:554/Streaming/Channels/201"}},
		Token:    "tok", TokenAt: now.Add(-time.Second),
		Task: &domain.Task{ID: "arn:aws:ecs:us-east-1:1:task/c/abc", Launcher: "ecs", Channels: []int32{1, 2}, StartedAt: now,
			Pack: []string{"dev0", "dev1", "dev9"}}, // packed: every device the task records
		Failures: []time.Time{now.Add(-time.Minute), now}, NextAttempt: now.Add(time.Minute), LastExit: 137, LastReason: "killed",
	}
	stored, err := s.Put(ctx, d, now)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Version != 1 {
		t.Errorf("version %d after the first write", stored.Version)
	}
	got, found, err := s.Get(ctx, "dev1")
	if err != nil || !found {
		t.Fatalf("get: %v %v", found, err)
	}
	if !reflect.DeepEqual(got, stored) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, stored)
	}

	// A second creator of the same device loses.
	if _, err := s.Put(ctx, domain.Device{Index: "dev1", Want: domain.WantStop}, now); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	// Two writers that read the same version: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := got
			w.LastReason = "writer " + string(rune('a'+i))
			_, errs[i] = s.Put(ctx, w, now)
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, domain.ErrConflict):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent writers of version %d won, want 1", wins, got.Version)
	}
	if err := s.Delete(ctx, got); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("delete at a stale version: %v", err)
	}
	cur, _, _ := s.Get(ctx, "dev1")
	if err := s.Delete(ctx, cur); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, found, _ := s.Get(ctx, "dev1"); found {
		t.Error("row still there after delete")
	}
}

func TestIPCameraListSkipsBrokenRows(t *testing.T) {
	t.Parallel()
	db, res := tables(t)
	s := NewIPCamera(db, res.Tables["ip-camera"])
	ctx := context.Background()
	for _, dev := range []string{"a", "b"} {
		if _, err := s.Put(ctx, domain.Device{Index: dev, Want: domain.WantStop, Status: domain.StatusIdle}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(res.Tables["ip-camera"]), Item: map[string]ddbtypes.AttributeValue{
		"device_index": &ddbtypes.AttributeValueMemberS{Value: "broken"},
		"want_at":      &ddbtypes.AttributeValueMemberS{Value: "yesterday"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	devs, bad, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "broken") {
		t.Errorf("devices %d, bad %v", len(devs), bad)
	}
}

func TestDeviceMediaDesires(t *testing.T) {
	t.Parallel()
	db, res := tables(t)
	table := res.Tables["deviceMediaURL"]
	ctx := context.Background()
	put := func(dev string, ch int, status, url string, lastChange ddbtypes.AttributeValue) {
		t.Helper()
		item := map[string]ddbtypes.AttributeValue{
			"device_index": &ddbtypes.AttributeValueMemberS{Value: dev},
			"channel":      &ddbtypes.AttributeValueMemberN{Value: itoa(ch)},
			"gateway_id":   &ddbtypes.AttributeValueMemberS{Value: "gw1"},
			"media_url":    &ddbtypes.AttributeValueMemberS{Value: url},
			"status":       &ddbtypes.AttributeValueMemberS{Value: status},
			"version":      &ddbtypes.AttributeValueMemberN{Value: "3"},
		}
		if lastChange != nil {
			item["last_change"] = lastChange
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rfc := &ddbtypes.AttributeValueMemberS{Value: at.Format(time.RFC3339Nano)}
	put("cam-a", 2, "online", "rtsp://gw:554/Streaming/Channels/201", rfc)
	put("cam-a", 1, "online", "rtsp://admin:pw@gw:554/Streaming/Channels/101", &ddbtypes.AttributeValueMemberN{Value: itoa(int(at.Add(time.Second).UnixMilli()))})
	put("cam-a", 3, "offline", "rtsp://gw:554/Streaming/Channels/301", rfc)
	put("cam-b", 1, "offline", "rtsp://gw:554/Streaming/Channels/101", &ddbtypes.AttributeValueMemberN{Value: itoa(int(at.Unix()))})
	put("cam-c", 1, "deleted", "rtsp://gw:554/Streaming/Channels/101", rfc)
	put("cam-d", 1, "online", "http://gw/not-rtsp", rfc)

	dm := NewDeviceMedia(db, table)
	rows, bad, err := dm.Rows(ctx)
	if err != nil || len(bad) != 0 || len(rows) != 6 {
		t.Fatalf("rows %d, bad %v, err %v", len(rows), bad, err)
	}
	desires, bad := app.DesiresOf(rows)
	if len(bad) != 1 || !strings.Contains(bad[0].Error(), "cam-d") {
		t.Errorf("bad %v", bad)
	}
	a := desires["cam-a"]
	wantA := []domain.Channel{{Number: 1, MediaURL: "rtsp://gw:554/Streaming/Channels/101"}, {Number: 2, MediaURL: "rtsp://gw:554/Streaming/Channels/201"}}
	if a.Want != domain.WantRecord || !reflect.DeepEqual(a.Channels, wantA) || !a.At.Equal(at.Add(time.Second)) || a.Gateway != "gw1" {
		t.Errorf("cam-a: %+v", a)
	}
	if b := desires["cam-b"]; b.Want != domain.WantStop || !b.At.Equal(at) {
		t.Errorf("cam-b: %+v", b)
	}
	if c := desires["cam-c"]; c.Want != domain.WantDelete {
		t.Errorf("cam-c: %+v", c)
	}
	if d := desires["cam-d"]; d.Want != domain.WantStop {
		t.Errorf("cam-d (no usable URL) should not record: %+v", d)
	}
	one, err := dm.DeviceRows(ctx, "cam-a")
	if err != nil || len(one) != 3 {
		t.Errorf("device rows: %d %v", len(one), err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
