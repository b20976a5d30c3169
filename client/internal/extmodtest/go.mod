module example.com/extmodtest

go 1.26.0

require github.com/restless-stream/ingest v0.0.0

replace github.com/restless-stream/ingest => ../../..
