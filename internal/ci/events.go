package ci

import "time"

// EventKind says what a status event is about.
type EventKind string

const (
	EventJob      EventKind = "job"
	EventPipeline EventKind = "pipeline"
)

// HookName is the X-Gitlab-Event header of the kind's webhook deliveries.
func (k EventKind) HookName() string {
	if k == EventPipeline {
		return "Pipeline Hook"
	}
	return "Job Hook"
}

// StatusEvent is one status change of a job or pipeline, as recorded with
// the change. Names, ref, sha and times are those of the moment.
type StatusEvent struct {
	ID             int64
	ProjectID      int64
	Kind           EventKind
	ObjectID       int64 // the job's or the pipeline's id
	PipelineID     int64
	Name, Stage    string // jobs only
	Ref            string
	Tag            bool
	SHA            string
	Status         JobStatus
	PreviousStatus JobStatus // "" when the object was created in Status
	FailureReason  FailureReason
	CreatedAt      time.Time
	StartedAt      *time.Time
	FinishedAt     *time.Time
	At             time.Time
}

// ProjectHook is a project's webhook.
type ProjectHook struct {
	ID                    int64
	ProjectID             int64
	URL                   string
	Name, Description     string
	Token                 string // the secret sent as X-Gitlab-Token
	PushEvents            bool
	JobEvents             bool
	PipelineEvents        bool
	EnableSSLVerification bool
	CreatedAt             time.Time
}

// DeliveryState is where a webhook delivery stands.
type DeliveryState string

const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
)

// HookDelivery is one event sent (or to be sent) to one hook, with the
// outcome of its latest attempt.
type HookDelivery struct {
	ID              int64
	HookID          int64
	EventID         int64
	Kind            EventKind
	State           DeliveryState
	Attempts        int
	NextAttemptAt   time.Time
	UUID            string
	Payload         []byte // nil until the first attempt builds it
	ResponseStatus  *int
	ResponseExcerpt string
	Error           string
	Duration        *float64 // seconds
	CreatedAt       time.Time
	UpdatedAt       time.Time
}
