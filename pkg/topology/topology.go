// Package topology is the one definition of every AWS resource mediagw
// uses (topology.json): names, and the environment variables that carry
// them to the services. It creates nothing: the provisioner in
// deploy/provision applies it to AWS or an emulator.
package topology

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

//go:embed topology.json
var definitionJSON []byte

// Definition is the parsed topology.json.
type Definition struct {
	Topics     []Topic     `json:"topics"`
	Queues     []Queue     `json:"queues"`
	Rules      []Rule      `json:"rules"`
	Tables     []Table     `json:"tables"`
	Buckets    []Bucket    `json:"buckets"`
	Parameters []Parameter `json:"parameters"`
	ECS        ECS         `json:"ecs"`
}

// Topic is an SNS topic and the event types published on it.
type Topic struct {
	Name   string   `json:"name"`
	Events []string `json:"events"`
}

// Queue is an SQS queue with its dead-letter queue "<name>-dlq".
type Queue struct {
	Name                     string         `json:"name"`
	Consumer                 string         `json:"consumer"`
	MaxReceiveCount          int            `json:"maxReceiveCount"`
	VisibilityTimeoutSeconds int            `json:"visibilityTimeoutSeconds"`
	Subscriptions            []Subscription `json:"subscriptions"`
	// Rules are EventBridge rules that target this queue.
	Rules   []string `json:"rules"`
	Comment string   `json:"comment,omitempty"`
}

// DLQName is the name of the queue's dead-letter queue.
func (q Queue) DLQName() string { return q.Name + "-dlq" }

// Subscription subscribes a queue to a topic with raw delivery, filtered
// on the event_type message attribute; one without events takes every
// message of the topic in the SNS envelope (for topics of plain messages,
// such as the alert mails, whose Subject only the envelope keeps).
type Subscription struct {
	Topic  string   `json:"topic"`
	Events []string `json:"events"`
}

// Rule is an EventBridge rule on the default bus.
type Rule struct {
	Name    string          `json:"name"`
	Pattern json.RawMessage `json:"pattern"`
}

// Table is a DynamoDB table (on-demand). Key attributes are strings unless
// the *Type field says "N".
type Table struct {
	Name             string `json:"name"`
	PartitionKey     string `json:"partitionKey"`
	PartitionKeyType string `json:"partitionKeyType"`
	SortKey          string `json:"sortKey"`
	SortKeyType      string `json:"sortKeyType"`
	TTLAttribute     string `json:"ttlAttribute"`
	Comment          string `json:"comment,omitempty"`
}

// Bucket is an S3 bucket whose objects move to Glacier after GlacierAfterDays.
type Bucket struct {
	Name             string `json:"name"`
	GlacierAfterDays int32  `json:"glacierAfterDays"`
}

// Parameter is an SSM parameter. LocalValue is only used against the
// emulator, never in AWS, where operators set the values.
type Parameter struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	LocalValue string `json:"localValue"`
}

// ECS holds the recording tasks' cluster and task definition.
type ECS struct {
	Cluster            string `json:"cluster"`
	RecorderTaskFamily string `json:"recorderTaskFamily"`
	RecorderContainer  string `json:"recorderContainer"`
	RecorderImage      string `json:"recorderImage"`
	RecorderCPU        string `json:"recorderCpu"`
	RecorderMemory     string `json:"recorderMemory"`
}

// Default returns the project's topology.
func Default() Definition {
	d, err := Parse(definitionJSON)
	if err != nil {
		panic(fmt.Sprintf("embedded topology.json: %v", err)) // caught by TestDefaultIsValid
	}
	return d
}

// Parse parses and validates a topology document.
func Parse(b []byte) (Definition, error) {
	var d Definition
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("topology: %w", err)
	}
	return d, d.Validate()
}

// Validate checks that every reference resolves and every event type is
// published on exactly one topic.
func (d Definition) Validate() error {
	topics := map[string]Topic{}
	owner := map[string]string{}
	for _, t := range d.Topics {
		topics[t.Name] = t
		for _, e := range t.Events {
			if prev, dup := owner[e]; dup {
				return fmt.Errorf("topology: event %s on topics %s and %s", e, prev, t.Name)
			}
			owner[e] = t.Name
		}
	}
	for field, v := range map[string]string{"recorderCpu": d.ECS.RecorderCPU, "recorderMemory": d.ECS.RecorderMemory} {
		if n, err := strconv.Atoi(v); d.ECS.RecorderTaskFamily != "" && (err != nil || n <= 0) {
			return fmt.Errorf("topology: ecs %s %q is not a positive number", field, v)
		}
	}
	rules := map[string]bool{}
	for _, r := range d.Rules {
		rules[r.Name] = true
	}
	for _, q := range d.Queues {
		if q.MaxReceiveCount <= 0 {
			return fmt.Errorf("topology: queue %s: maxReceiveCount must be positive", q.Name)
		}
		for _, s := range q.Subscriptions {
			if _, ok := topics[s.Topic]; !ok {
				return fmt.Errorf("topology: queue %s subscribes to unknown topic %s", q.Name, s.Topic)
			}
			for _, e := range s.Events {
				if owner[e] != s.Topic {
					return fmt.Errorf("topology: queue %s wants %s from %s, which does not carry it", q.Name, e, s.Topic)
				}
			}
		}
		for _, r := range q.Rules {
			if !rules[r] {
				return fmt.Errorf("topology: queue %s targeted by unknown rule %s", q.Name, r)
			}
		}
	}
	return nil
}

// WithPrefix returns a copy whose resource names start with prefix, so
// that tests sharing one emulator do not see each other.
func (d Definition) WithPrefix(prefix string) Definition {
	if prefix == "" {
		return d
	}
	p := func(s string) string { return prefix + s }
	out := d
	out.Topics = nil
	for _, t := range d.Topics {
		t.Name = p(t.Name)
		out.Topics = append(out.Topics, t)
	}
	out.Queues = nil
	for _, q := range d.Queues {
		q.Name = p(q.Name)
		subs := make([]Subscription, len(q.Subscriptions))
		for i, s := range q.Subscriptions {
			subs[i] = Subscription{Topic: p(s.Topic), Events: s.Events}
		}
		q.Subscriptions = subs
		rules := make([]string, len(q.Rules))
		for i, r := range q.Rules {
			rules[i] = p(r)
		}
		q.Rules = rules
		out.Queues = append(out.Queues, q)
	}
	out.Rules = nil
	for _, r := range d.Rules {
		r.Name = p(r.Name)
		out.Rules = append(out.Rules, r)
	}
	out.Tables = nil
	for _, t := range d.Tables {
		t.Name = p(t.Name)
		out.Tables = append(out.Tables, t)
	}
	out.Buckets = nil
	for _, b := range d.Buckets {
		b.Name = strings.ToLower(p(b.Name))
		out.Buckets = append(out.Buckets, b)
	}
	out.Parameters = nil
	for _, pm := range d.Parameters {
		pm.Name = "/" + strings.Trim(prefix, "-") + pm.Name
		out.Parameters = append(out.Parameters, pm)
	}
	out.ECS.Cluster = p(d.ECS.Cluster)
	out.ECS.RecorderTaskFamily = p(d.ECS.RecorderTaskFamily)
	return out
}

// ParameterRoot is the physical name of "/mediagw".
func (d Definition) ParameterRoot() string {
	for _, p := range d.Parameters {
		if i := strings.Index(p.Name, "/mediagw/"); i >= 0 {
			return p.Name[:i] + "/mediagw"
		}
	}
	return "/mediagw"
}

var camel = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// EnvName is the environment variable naming a resource: "mediagw-" is
// dropped, words are upper-cased and joined by "_", and suffix is added.
// mediagw-device-events + TOPIC_ARN → DEVICE_EVENTS_TOPIC_ARN;
// deviceMediaURL + TABLE → DEVICE_MEDIA_URL_TABLE.
func EnvName(resource, suffix string) string {
	s := strings.TrimPrefix(resource, "mediagw-")
	s = camel.ReplaceAllString(s, "${1}_${2}")
	s = strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
	return s + "_" + suffix
}

// Routes maps each event type to the ARN of the topic that carries it,
// given the ARNs of the topics (by logical name) a service publishes to.
func (d Definition) Routes(topicARNs map[string]string) map[string]string {
	routes := map[string]string{}
	for _, t := range d.Topics {
		if arn := topicARNs[t.Name]; arn != "" {
			for _, e := range t.Events {
				routes[e] = arn
			}
		}
	}
	return routes
}
