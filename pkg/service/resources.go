package service

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mediagw/pkg/topology"
)

// Queue is an SQS queue of topology.json a service consumes, with the
// settings that locate it: <NAME>_QUEUE_URL, <NAME>_DLQ_URL and
// <NAME>_MAX_RECEIVE_COUNT (see topology.EnvName). The fields are filled
// by Parse.
type Queue struct {
	// Name is the logical name in topology.json.
	Name            string
	URL, DLQURL     string
	MaxReceiveCount int
}

// Label is the queue's name in logs and metrics.
func (q *Queue) Label() string { return strings.TrimPrefix(q.Name, "mediagw-") }

// Queue declares a queue the service cannot run without. name must be a
// queue of topology.json: a typo is a programming error and panics at
// start-up, where every test of the wiring sees it.
func (c *Config) Queue(name string) *Queue { return c.queue(name, true) }

// OptionalQueue declares a queue the service can run without (URL empty).
func (c *Config) OptionalQueue(name string) *Queue { return c.queue(name, false) }

func (c *Config) queue(name string, required bool) *Queue {
	def, ok := topologyQueue(name)
	if !ok {
		panic(fmt.Sprintf("service: queue %q is not in topology.json", name))
	}
	q := &Queue{Name: name, MaxReceiveCount: def.MaxReceiveCount}
	var opts []Option
	if required {
		opts = append(opts, Required())
	}
	c.add(topology.EnvName(name, "QUEUE_URL"), "", "SQS queue "+name, func(s string) error { q.URL = strings.TrimSpace(s); return nil }, opts)
	c.add(topology.EnvName(name, "DLQ_URL"), "", "its dead-letter queue", func(s string) error { q.DLQURL = strings.TrimSpace(s); return nil }, nil)
	maxEnv := topology.EnvName(name, "MAX_RECEIVE_COUNT")
	c.add(maxEnv, strconv.Itoa(def.MaxReceiveCount), "deliveries before a failing message is dead-lettered (keep equal to the redrive policy)",
		func(s string) error {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("not a positive whole number: %q", s)
			}
			q.MaxReceiveCount = n
			return nil
		}, nil)
	return q
}

// Topic is an SNS topic of topology.json a service publishes to; its ARN
// comes from <NAME>_TOPIC_ARN.
type Topic struct {
	Name string
	ARN  string
}

// Topic declares a topic the service publishes to (required).
func (c *Config) Topic(name string) *Topic {
	mustBeInTopology("topic", name)
	t := &Topic{Name: name}
	c.add(topology.EnvName(name, "TOPIC_ARN"), "", "SNS topic "+name, func(s string) error { t.ARN = strings.TrimSpace(s); return nil }, []Option{Required()})
	return t
}

// Table declares a DynamoDB table of topology.json (required), e.g.
// "deviceMediaURL" → DEVICE_MEDIA_URL_TABLE.
func (c *Config) Table(name string) *string {
	mustBeInTopology("table", name)
	return c.String(topology.EnvName(name, "TABLE"), "", "DynamoDB table "+name, Required())
}

// Bucket declares an S3 bucket of topology.json (required), e.g.
// "mediagw-recordings" → RECORDINGS_BUCKET.
func (c *Config) Bucket(name string) *string {
	mustBeInTopology("bucket", name)
	return c.String(topology.EnvName(name, "BUCKET"), "", "S3 bucket "+name, Required())
}

func topologyQueue(name string) (topology.Queue, bool) {
	for _, q := range topology.Default().Queues {
		if q.Name == name {
			return q, true
		}
	}
	return topology.Queue{}, false
}

// mustBeInTopology panics when name is no resource of that kind in
// topology.json: a typo in a service's wiring, seen by its first test.
func mustBeInTopology(kind, name string) {
	d := topology.Default()
	var names []string
	switch kind {
	case "topic":
		for _, t := range d.Topics {
			names = append(names, t.Name)
		}
	case "table":
		for _, t := range d.Tables {
			names = append(names, t.Name)
		}
	case "bucket":
		for _, b := range d.Buckets {
			names = append(names, b.Name)
		}
	}
	if !slices.Contains(names, name) {
		panic(fmt.Sprintf("service: %s %q is not in topology.json", kind, name))
	}
}
