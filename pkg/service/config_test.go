package service

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func testConfig(env map[string]string) *Config {
	c := NewConfig("demo", "a demo service", "127.0.0.1:0")
	c.lookup = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return c
}

func TestConfigEnvThenFlagWins(t *testing.T) {
	c := testConfig(map[string]string{"QUEUE_URL": "from-env", "POLL_INTERVAL": "15", "GATEWAYS": "a, b,,c"})
	q := c.String("QUEUE_URL", "", "queue", Required())
	p := c.Duration("POLL_INTERVAL", 10*time.Second, "poll")
	g := c.List("GATEWAYS", "", "gateways")
	if err := c.Parse([]string{"--queue-url", "from-flag"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if *q != "from-flag" || *p != 15*time.Second || strings.Join(*g, "|") != "a|b|c" {
		t.Fatalf("got queue=%q poll=%s gateways=%q", *q, *p, *g)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	c := testConfig(map[string]string{"WORKERS": "many"})
	c.Int("WORKERS", 4, "workers")
	err := c.Parse(nil, &bytes.Buffer{})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Var != "WORKERS" {
		t.Fatalf("want ConfigError naming WORKERS, got %v", err)
	}

	c = testConfig(map[string]string{"LOG_LEVEL": "loud"})
	c.String("TOPIC_ARN", "", "topic", Required())
	err = c.Parse(nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "TOPIC_ARN: required") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("want both bad variables named, got %v", err)
	}
}

// --check-settings validates as a start would, and on success lists the
// variables read from the environment (and nothing the binary ignores).
func TestConfigCheckSettings(t *testing.T) {
	env := map[string]string{"TOPIC_ARN": "arn:t", "WORKERS": "3", "NOT_A_SETTING": "x"}
	c := testConfig(env)
	c.String("TOPIC_ARN", "", "topic", Required())
	c.Int("WORKERS", 4, "workers")
	c.String("UNSET", "", "unset")
	var out bytes.Buffer
	if err := c.Parse([]string{"--check-settings", "--http-addr", ":1"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("valid settings: want ErrHelp, got %v", err)
	}
	if got := out.String(); got != "TOPIC_ARN\nWORKERS\n" {
		t.Errorf("listed %q, want the variables read from the environment", got)
	}

	env["WORKERS"] = "many"
	delete(env, "TOPIC_ARN")
	c = testConfig(env)
	c.String("TOPIC_ARN", "", "topic", Required())
	c.Int("WORKERS", 4, "workers")
	out.Reset()
	err := c.Parse([]string{"--check-settings"}, &out)
	if err == nil || errors.Is(err, ErrHelp) || !strings.Contains(err.Error(), "WORKERS") {
		t.Fatalf("invalid settings: want the error naming WORKERS, got %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("invalid settings listed %q", out.String())
	}
}

func TestConfigHelpListsEveryVariable(t *testing.T) {
	c := testConfig(nil)
	c.String("TOPIC_ARN", "", "where events go", Required())
	var out bytes.Buffer
	if err := c.Parse([]string{"--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("want ErrHelp, got %v", err)
	}
	for _, want := range []string{"TOPIC_ARN", "--topic-arn", "(required)", "HTTP_ADDR", "LOG_LEVEL", "SHUTDOWN_GRACE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestConfigBareBoolFlagMeansTrue(t *testing.T) {
	c := testConfig(map[string]string{"DRY_RUN": "false"})
	dry := c.Bool("DRY_RUN", false, "only print")
	verbose := c.Bool("VERBOSE", true, "talk")
	if err := c.Parse([]string{"--dry-run", "--verbose=false"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !*dry || *verbose {
		t.Fatalf("dry=%v verbose=%v, want true false", *dry, *verbose)
	}
}

func TestResourcesAreNamedFromTopology(t *testing.T) {
	env := map[string]string{
		"TASK_MANAGER_DEVICE_EVENTS_QUEUE_URL": "http://q", "TASK_MANAGER_DEVICE_EVENTS_DLQ_URL": "http://dlq",
		"DEVICE_EVENTS_TOPIC_ARN": "arn:t", "DEVICE_MEDIA_URL_TABLE": "tbl", "RECORDINGS_BUCKET": "b",
	}
	c := NewConfig("demo", "test", ":0")
	c.lookup = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	q := c.Queue("mediagw-task-manager-device-events")
	opt := c.OptionalQueue("mediagw-device-watcher-gateway-events")
	topic := c.Topic("mediagw-device-events")
	table := c.Table("deviceMediaURL")
	bucket := c.Bucket("mediagw-recordings")
	if err := c.Parse(nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	if q.URL != "http://q" || q.DLQURL != "http://dlq" || q.MaxReceiveCount != 5 || q.Label() != "task-manager-device-events" {
		t.Errorf("queue = %+v", q)
	}
	if opt.URL != "" {
		t.Errorf("optional queue URL = %q, want empty", opt.URL)
	}
	if topic.ARN != "arn:t" || *table != "tbl" || *bucket != "b" {
		t.Errorf("topic %+v, table %q, bucket %q", topic, *table, *bucket)
	}

	// A required queue that is not set is named in the error.
	c = NewConfig("demo", "test", ":0")
	c.lookup = func(string) (string, bool) { return "", false }
	c.Queue("mediagw-task-manager-device-events")
	err := c.Parse(nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TASK_MANAGER_DEVICE_EVENTS_QUEUE_URL") {
		t.Fatalf("Parse = %v, want the missing queue variable named", err)
	}
}

func TestUnknownResourcePanics(t *testing.T) {
	for name, declare := range map[string]func(*Config){
		"queue": func(c *Config) { c.Queue("mediagw-no-such-queue") },
		"topic": func(c *Config) { c.Topic("mediagw-no-such-topic") },
		"table": func(c *Config) { c.Table("noSuchTable") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: declaring a name that is not in topology.json did not panic", name)
				}
			}()
			declare(NewConfig("demo", "test", ":0"))
		}()
	}
}

func TestEnvPrefixNamesTheVariableNotTheFlag(t *testing.T) {
	env := map[string]string{"GATEWAY_SIM_NAME": "from-env", "NAME": "the shell's"}
	c := NewCommandConfig("sim", "test")
	c.lookup = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c.EnvPrefix("GATEWAY_SIM_")
	name := c.String("NAME", "default", "name")
	devices := c.Int("DEVICES", 1, "devices")
	if err := c.Parse([]string{"--devices", "3"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if *name != "from-env" || *devices != 3 {
		t.Fatalf("name %q devices %d, want from-env and 3", *name, *devices)
	}
	var usage bytes.Buffer
	c.Usage(&usage)
	if !strings.Contains(usage.String(), "GATEWAY_SIM_NAME") || !strings.Contains(usage.String(), "--name") || !strings.Contains(usage.String(), "LOG_LEVEL ") {
		t.Fatalf("usage:\n%s", usage.String())
	}
}
