package topology

import (
	"strings"
	"testing"
)

func TestValidateRefusesNonNumericRecorderSize(t *testing.T) {
	d := Default()
	d.ECS.RecorderMemory = "2GB"
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "recorderMemory") {
		t.Fatalf("Validate() = %v, want an error naming recorderMemory", err)
	}
}

func TestDefaultIsValid(t *testing.T) {
	d := Default()
	if len(d.Topics) == 0 || len(d.Queues) == 0 {
		t.Fatal("empty topology")
	}
	names := map[string]bool{}
	for _, tb := range d.Tables {
		names[tb.Name] = true
	}
	for _, want := range []string{"deviceMediaURL", "ip-camera"} {
		if !names[want] {
			t.Errorf("table %s missing", want)
		}
	}
}

func TestValidateRejectsDanglingReferences(t *testing.T) {
	_, err := Parse([]byte(`{"topics":[{"name":"a","events":["E"]}],"queues":[{"name":"q","maxReceiveCount":3,"subscriptions":[{"topic":"b","events":["E"]}]}]}`))
	if err == nil || !strings.Contains(err.Error(), "unknown topic b") {
		t.Fatalf("want unknown topic error, got %v", err)
	}
	_, err = Parse([]byte(`{"topics":[{"name":"a","events":["E"]},{"name":"b","events":["E"]}]}`))
	if err == nil || !strings.Contains(err.Error(), "event E on topics a and b") {
		t.Fatalf("want duplicate event error, got %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"mediagw-device-events":              "DEVICE_EVENTS_TOPIC_ARN",
		"deviceMediaURL":                     "DEVICE_MEDIA_URL_TOPIC_ARN",
		"ip-camera":                          "IP_CAMERA_TOPIC_ARN",
		"mediagw-task-manager-device-events": "TASK_MANAGER_DEVICE_EVENTS_TOPIC_ARN",
	} {
		if got := EnvName(in, "TOPIC_ARN"); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}
