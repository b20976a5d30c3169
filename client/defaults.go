package client

// DefaultMaxEventBytes is the default bound on one runtime event, in bytes
// (4 MiB): the sources cut longer events and the pipeline rejects them as
// too large. The SSE decoder, the sources, the pipeline and the daemon's
// configuration all take their default from here.
const DefaultMaxEventBytes = 4 << 20

// destinationPrefix starts every default destination.
const destinationPrefix = "restless."

// DefaultDestination is the topic or subject a stream named name is published
// to unless configured otherwise: "restless." + name.
func DefaultDestination(name string) string { return destinationPrefix + name }
