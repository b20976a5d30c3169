package emulator

import (
	"fmt"
	"strings"
)

// snippetLanguages are the languages connection snippets are written in.
var snippetLanguages = []string{"curl", "go", "javascript", "python"}

func snippetLanguage(s string) string {
	s = strings.ToLower(s)
	for _, l := range snippetLanguages {
		if l == s {
			return l
		}
	}
	return ""
}

// snippets returns connection snippets for lang, or for every language when lang is "".
func snippets(lang, sseURL, wsURL string) map[string]string {
	all := map[string]string{
		"curl": fmt.Sprintf("curl -N -H \"Authorization: Bearer $RESTLESS_API_KEY\" %s", shellQuote(sseURL)),
		"python": fmt.Sprintf(`import asyncio, os
from restless_stream import AsyncRestlessStreamClient

async def main():
    async with AsyncRestlessStreamClient(api_key=os.environ["RESTLESS_API_KEY"]) as client:
        async for event in client.streams.subscribe_sse(%q):
            print(event.type, event.data)

asyncio.run(main())
`, sseURL),
		"javascript": fmt.Sprintf(`const ws = new WebSocket(%q);
ws.onmessage = (msg) => console.log(JSON.parse(msg.data));
`, wsURL),
		"go": fmt.Sprintf(`src, err := sse.NewSource(sse.Config{URL: %q, APIKey: ingest.Secret(os.Getenv("RESTLESS_API_KEY"))})
`, sseURL),
	}
	if l := snippetLanguage(lang); l != "" {
		return map[string]string{l: all[l]}
	}
	return all
}
