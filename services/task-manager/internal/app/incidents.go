package app

import "time"

// What mediagw-ctl reads of the health-sentinel: its incidents (the
// mediagw-incidents table, adapters/dynamodb) and the alert mails it sent
// (the mediagw-alert-mail queue, adapters/sqs).

// Incident is one incident as the health-sentinel stores it (the JSON
// record in the item's doc attribute; services/health-sentinel
// internal/domain.Incident writes it): the fields the CLI shows.
type Incident struct {
	Key      string           `json:"key"`
	Kind     string           `json:"kind"`
	Gateway  string           `json:"gateway"`
	Device   string           `json:"device"`
	State    string           `json:"state"`
	ID       string           `json:"id"`
	Title    string           `json:"title"`
	Detail   string           `json:"detail"`
	Opened   time.Time        `json:"opened"`
	Resolved time.Time        `json:"resolved"`
	Cleared  string           `json:"cleared_by"`
	Merged   string           `json:"merged_into"`
	Cameras  []string         `json:"cameras"`
	Missed   string           `json:"missed"`
	Steps    []IncidentStep   `json:"steps"`
	Exits    []IncidentExit   `json:"exits"`
	Mails    []IncidentMail   `json:"mails"`
	History  []IncidentRecord `json:"history"`
}

// IncidentStep is something mediagw did about an incident.
type IncidentStep struct {
	At      time.Time `json:"at"`
	What    string    `json:"what"`
	Outcome string    `json:"outcome"`
}

// IncidentExit is a recording task's exit.
type IncidentExit struct {
	TaskID    string    `json:"task_id"`
	Code      int32     `json:"code"`
	At        time.Time `json:"at"`
	LogStream string    `json:"log_stream"`
}

// IncidentMail is a mail an incident owes or sent.
type IncidentMail struct {
	Kind   string    `json:"kind"`
	State  string    `json:"state"`
	SentAt time.Time `json:"sent_at"`
}

// IncidentRecord is an earlier, resolved incident of the same key.
type IncidentRecord struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Opened   time.Time `json:"opened"`
	Resolved time.Time `json:"resolved"`
	Missed   string    `json:"missed"`
}

// AlertMail is one alert mail as the mail topic carried it.
type AlertMail struct {
	ID      string
	Sent    time.Time
	Subject string
	Body    string
}
