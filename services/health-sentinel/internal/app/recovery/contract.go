package recovery

import (
	"context"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

// Reporter is told every step of a recovery; the incidents side writes them
// into the gateway's incident and its mails, and publishes GatewayRecovered
// when told.
type Reporter interface {
	StepStarted(ctx context.Context, gatewayID string, step Step) error
	StepFinished(ctx context.Context, gatewayID string, step Step) error // step.Outcome set
	Recovered(ctx context.Context, r Recovered) error                    // publishes GatewayRecovered
	GaveUp(ctx context.Context, gatewayID string, reason string) error   // budget spent: people must act
}

// StepKind names a rung of the recovery ladder.
type StepKind string

const (
	StepISAPIReboot StepKind = "isapi-reboot"
	StepEC2Reboot   StepKind = "ec2-reboot"
	StepReplace     StepKind = "replace"
)

// Outcomes a finished Step carries.
const (
	OutcomeRecovered = "recovered" // the gateway answers again after this step
	OutcomeFailed    = "failed"    // the step ran but the gateway is still down
	OutcomeError     = "error"     // the step could not be carried out (Detail says why)
	OutcomeSkipped   = "skipped"   // the step does not apply (e.g. API silent: no ISAPI reboot)
)

// Step is one rung of the ladder as it was tried.
type Step struct {
	Kind    StepKind
	Attempt int // 1-based, counted within the gateway's recovery budget window
	Started time.Time
	Ended   time.Time // zero in StepStarted
	Outcome string    // empty in StepStarted; one of the Outcome constants
	Detail  string
}

// Recovered says the gateway answers again; after a replacement InstanceID
// differs from PreviousInstanceID.
type Recovered struct {
	GatewayID                  string
	Address                    string // host[:port] the ISAPI answers on
	ElasticIP                  string
	InstanceID                 string
	PreviousInstanceID         string
	BootstrapPasswordParameter string
}

// Health is one health check of a gateway: its API (ISAPI device status) and
// its instance (EC2 status checks). InstanceOK is nil when the instance
// status is unknown (no status yet, or no instance: the local simulator).
type Health struct {
	GatewayID  string
	APIAnswers bool // the API answered (ok or with an error)
	// APIState refines APIAnswers: ok, sick (answers with errors), silent
	// (no answer), unknown (no login possible: budget or credentials).
	APIState       domain.APIState
	APIDetail      string
	InstanceID     string // the gateway's instance, if known
	InstanceOK     *bool
	InstanceDetail string
	CheckedAt      time.Time
}

// Healthy says whether no action is needed: the API's device status was
// read and the instance is not known to be impaired.
// A Health without APIState (built by hand) goes by APIAnswers.
func (h Health) Healthy() bool {
	api := h.APIState == domain.APIOK || (h.APIState == "" && h.APIAnswers)
	return api && (h.InstanceOK == nil || *h.InstanceOK)
}
