// A second MQTT 5 broker for the project's tests: mochi-mqtt/server/v2 (MIT;
// an independent Go implementation with shared subscriptions, retained
// messages and Last Will), configured like the Mosquitto the harness runs
// (src/harness/mosquitto.ts): loopback only, no anonymous clients, one
// password per user, the client id bound to the username, the project's ACL
// in Mosquitto's own file format (the text aclText generates, so one source
// of truth drives both brokers), no persistence, the same packet size limit.
//
// Usage: mochi-broker --port N --users FILE --acl FILE [--max-packet-size B]
// FILE --users is JSON {"username": "password", ...} (mode 0600, written by
// src/harness/mochi.ts). Logs warnings and errors to stderr, never payloads.
package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

type access uint8

const (
	read access = 1 << iota
	write
)

// grant is one ACL line: a topic filter, and for a pattern line the %u/%c placeholders unexpanded.
type grant struct {
	filter  string
	access  access
	pattern bool
}

// acl is a parsed Mosquitto acl_file: per-user "topic" lines and "pattern" lines for everyone.
type acl struct {
	users    map[string][]grant
	patterns []grant
}

func parseAccess(word string) (access, bool) {
	switch word {
	case "read":
		return read, true
	case "write":
		return write, true
	case "readwrite":
		return read | write, true
	}
	return 0, false
}

// parseACL reads the subset of Mosquitto's acl_file syntax the project writes: comments, "user
// NAME", "topic [read|write|readwrite] FILTER" and "pattern [read|write|readwrite] FILTER".
// Anything else (deny lines, topic lines before any user, which Mosquitto gives to anonymous
// clients) is refused rather than half-understood.
func parseACL(text string) (*acl, error) {
	a := &acl{users: map[string][]grant{}}
	user := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "user" && len(f) == 2:
			user = f[1]
			if _, seen := a.users[user]; !seen {
				a.users[user] = nil
			}
		case (f[0] == "topic" || f[0] == "pattern") && (len(f) == 2 || len(f) == 3):
			acc := read | write // Mosquitto's default when no access word is given
			filter := f[len(f)-1]
			if len(f) == 3 {
				var ok bool
				if acc, ok = parseAccess(f[1]); !ok {
					return nil, fmt.Errorf("acl line %d: access %q is not supported", n, f[1])
				}
			}
			if !mqtt.IsValidFilter(filter, false) {
				return nil, fmt.Errorf("acl line %d: %q is not a topic filter", n, filter)
			}
			if f[0] == "pattern" {
				a.patterns = append(a.patterns, grant{filter: filter, access: acc, pattern: true})
			} else if user == "" {
				return nil, fmt.Errorf("acl line %d: a topic line before any user line", n)
			} else {
				a.users[user] = append(a.users[user], grant{filter: filter, access: acc})
			}
		default:
			return nil, fmt.Errorf("acl line %d: %q is not supported", n, line)
		}
	}
	return a, sc.Err()
}

// matches: does the topic match the filter, with MQTT's + and # (filter "a/#" also matches "a").
func matches(filter, topic string) bool {
	fl := strings.Split(filter, "/")
	tl := strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || (f != "+" && f != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

// overlap: could any topic match both filters. What a subscription is checked with: a client may
// subscribe to a broad filter and receive only what it may read, since every delivery is checked
// against its topic (publishToClient calls OnACLCheck), as Mosquitto checks each message it sends.
func overlap(a, b string) bool {
	al := strings.Split(a, "/")
	bl := strings.Split(b, "/")
	for i := 0; ; i++ {
		if i == len(al) || i == len(bl) {
			return (len(al) == len(bl)) || (i < len(al) && al[i] == "#") || (i < len(bl) && bl[i] == "#")
		}
		if al[i] == "#" || bl[i] == "#" {
			return true
		}
		if al[i] != "+" && bl[i] != "+" && al[i] != bl[i] {
			return false
		}
	}
}

// stripShare: $share/<group>/<filter> is checked as <filter>, as Mosquitto checks it.
func stripShare(filter string) string {
	if !strings.HasPrefix(filter, "$share/") {
		return filter
	}
	rest := strings.SplitN(filter, "/", 3)
	if len(rest) < 3 {
		return filter
	}
	return rest[2]
}

// aclHook enforces passwords and the ACL. The client id is the username once the password is
// proved (Mosquitto's use_username_as_clientid), so %c and %u are the same identity.
type aclHook struct {
	mqtt.HookBase
	passwords map[string][32]byte
	acl       *acl
}

func (h *aclHook) ID() string { return "tss-acl" }

func (h *aclHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *aclHook) allowed(username, topic string, want access, subscribe bool) bool {
	check := func(filter string) bool {
		if subscribe {
			return overlap(filter, stripShare(topic))
		}
		return matches(filter, topic)
	}
	for _, g := range h.acl.users[username] {
		if g.access&want != 0 && check(g.filter) {
			return true
		}
	}
	// Mosquitto refuses pattern access to a username holding a wildcard or separator.
	if strings.ContainsAny(username, "+#/") {
		return false
	}
	for _, g := range h.acl.patterns {
		filter := strings.NewReplacer("%u", username, "%c", username).Replace(g.filter)
		if g.access&want != 0 && check(filter) {
			return true
		}
	}
	return false
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	username := string(pk.Connect.Username)
	want, known := h.passwords[username]
	got := sha256.Sum256(pk.Connect.Password)
	if !known || !pk.Connect.UsernameFlag || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return false
	}
	// Mosquitto checks a Last Will's topic at CONNECT; so does this broker, before it accepts
	// a will it would later publish unchecked.
	if pk.Connect.WillFlag && !h.allowed(username, pk.Connect.WillTopic, write, false) {
		return false
	}
	cl.ID = username
	if cl.Properties.Props.AssignedClientID != "" {
		cl.Properties.Props.AssignedClientID = username
	}
	return true
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, isWrite bool) bool {
	if isWrite {
		return h.allowed(cl.ID, topic, write, false)
	}
	// Subscriptions arrive as filters (possibly $share/...); deliveries as topics.
	if strings.ContainsAny(topic, "+#") || strings.HasPrefix(topic, "$share/") {
		return h.allowed(cl.ID, topic, read, true)
	}
	return h.allowed(cl.ID, topic, read, false)
}

func main() {
	port := flag.Int("port", 0, "loopback TCP port to listen on")
	usersFile := flag.String("users", "", "JSON file {\"username\": \"password\"}")
	aclFile := flag.String("acl", "", "Mosquitto-format ACL file")
	maxPacket := flag.Uint("max-packet-size", 0, "largest packet accepted, bytes (0: no limit)")
	flag.Parse()
	if err := run(*port, *usersFile, *aclFile, uint32(*maxPacket)); err != nil {
		fmt.Fprintf(os.Stderr, "mochi-broker: %v\n", err)
		os.Exit(1)
	}
}

func run(port int, usersFile, aclFile string, maxPacket uint32) error {
	if port <= 0 || port > 65535 || usersFile == "" || aclFile == "" {
		return errors.New("usage: mochi-broker --port N --users FILE --acl FILE [--max-packet-size B]")
	}
	raw, err := os.ReadFile(usersFile)
	if err != nil {
		return err
	}
	var users map[string]string
	if err := json.Unmarshal(raw, &users); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	passwords := make(map[string][32]byte, len(users))
	for u, p := range users {
		passwords[u] = sha256.Sum256([]byte(p))
	}
	aclText, err := os.ReadFile(aclFile)
	if err != nil {
		return err
	}
	rules, err := parseACL(string(aclText))
	if err != nil {
		return err
	}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacket
	// Mosquitto keeps a message (a retained presence record) until replaced; mochi by default
	// expires every message after a day.
	caps.MaximumMessageExpiryInterval = 0
	server := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := server.AddHook(&aclHook{passwords: passwords, acl: rules}, nil); err != nil {
		return err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: fmt.Sprintf("127.0.0.1:%d", port)})
	if err := server.AddListener(tcp); err != nil {
		return err
	}
	if err := server.Serve(); err != nil {
		return err
	}
	fmt.Printf("{\"event\":\"listening\",\"port\":%d}\n", port)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	return server.Close()
}
