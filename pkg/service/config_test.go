package service

import (
	"bytes"
	"errors"
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
