package deploy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"mediagw/pkg/topology"
)

// TestComposeFileIsValidAndMatchesTopology loads docker-compose.yml with
// compose-go (the library docker compose itself uses, schema validation
// included; no Docker engine needed) and checks that every resource
// variable it sets is the one topology.json defines for LocalStack.
func TestComposeFileIsValidAndMatchesTopology(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{filepath.Join("..", "docker-compose.yml")}, cli.WithName("mediagw"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}

	const account, region, endpoint = "000000000000", "us-east-1", "http://localstack:4566"
	d := topology.Default()
	want := map[string]string{"PARAMETER_ROOT": "/mediagw", "ECS_CLUSTER": d.ECS.Cluster}
	for _, tp := range d.Topics {
		want[topology.EnvName(tp.Name, "TOPIC_ARN")] = "arn:aws:sns:" + region + ":" + account + ":" + tp.Name
	}
	for _, q := range d.Queues {
		want[topology.EnvName(q.Name, "QUEUE_URL")] = endpoint + "/" + account + "/" + q.Name
		want[topology.EnvName(q.Name, "DLQ_URL")] = endpoint + "/" + account + "/" + q.DLQName()
	}
	for _, tb := range d.Tables {
		want[topology.EnvName(tb.Name, "TABLE")] = tb.Name
	}
	for _, b := range d.Buckets {
		want[topology.EnvName(b.Name, "BUCKET")] = b.Name
	}

	consumers := map[string]bool{}
	for name, svc := range project.Services {
		for k, v := range svc.Environment {
			if v == nil {
				continue
			}
			resourceVar := strings.HasSuffix(k, "_QUEUE_URL") || strings.HasSuffix(k, "_DLQ_URL") || strings.HasSuffix(k, "_TOPIC_ARN") ||
				strings.HasSuffix(k, "_TABLE") || strings.HasSuffix(k, "_BUCKET") || k == "ECS_CLUSTER" || k == "PARAMETER_ROOT"
			if !resourceVar {
				continue
			}
			w, ok := want[k]
			if !ok {
				t.Errorf("service %s: %s names no resource of topology.json", name, k)
				continue
			}
			if *v != w {
				t.Errorf("service %s: %s = %q, topology.json gives %q", name, k, *v, w)
			}
			if strings.HasSuffix(k, "_QUEUE_URL") {
				consumers[name+"/"+k] = true
			}
		}
	}
	// Every queue is consumed by the service topology.json names.
	for _, q := range d.Queues {
		if !consumers[q.Consumer+"/"+topology.EnvName(q.Name, "QUEUE_URL")] {
			t.Errorf("queue %s: service %s in docker-compose.yml lacks %s", q.Name, q.Consumer, topology.EnvName(q.Name, "QUEUE_URL"))
		}
	}
	for _, svc := range []string{"localstack", "provision", "gateway-sim", "configurator", "device-watcher", "task-manager", "health-sentinel"} {
		if _, ok := project.Services[svc]; !ok {
			t.Errorf("docker-compose.yml lacks service %s", svc)
		}
	}
}
