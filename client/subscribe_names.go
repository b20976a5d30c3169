package client

// Runtime names of the resume position (PROTOCOL.md §2): on every
// (re)connect a subscription sends its cursor as the Last-Event-ID header
// (SSE) and the cursor= query parameter (SSE and WebSocket); before any
// cursor exists it sends since= when set.
const (
	ParamCursor       = "cursor"
	ParamSince        = "since"
	HeaderLastEventID = "Last-Event-ID"
)

// DefaultMaxEventBytes is the size limit of one event of a subscription
// (4 MiB) unless WithMaxEventBytes says otherwise.
const DefaultMaxEventBytes = 4 << 20
