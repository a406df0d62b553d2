package sip_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/hotline-pbx/hotline/config"
	hsip "github.com/hotline-pbx/hotline/sip"
	"github.com/hotline-pbx/hotline/sip/siptest"
	"github.com/hotline-pbx/hotline/store"
)

// Registrations as phones and proxies see them, over loopback sockets
// (127.0.6.x, RTP ranges in 32000-32999).

type registrar struct {
	*hsip.Server
	changes chan string // "1001 reachable", in the order OnAgent heard them
	stop    context.CancelFunc
}

func startRegistrar(t *testing.T, o hsip.Options) *registrar {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = "127.0.6.1:0"
	r := &registrar{changes: make(chan string, 64)}
	o.Config = func() *config.Config { return cfg }
	o.Handler = hangupHandler{}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	o.OnAgent = func(agent string, p hsip.Presence) { r.changes <- agent + " " + p.String() }
	r.Server, r.stop = startWith(t, o)
	return r
}

// startWith starts a server until the test ends or stop is called.
func startWith(t *testing.T, o hsip.Options) (srv *hsip.Server, stop context.CancelFunc) {
	t.Helper()
	srv, err := hsip.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return srv, cancel
}

// expect waits for the next presence reports, in any order.
func (r *registrar) expect(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case c := <-r.changes:
			got = append(got, c)
		case <-timeout:
			t.Fatalf("presence reports %q, want %q", got, want)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("presence reports %q, want %q", got, want)
	}
}

// expectNoChange: reports are made before the 200 is sent, so none may be
// waiting once the REGISTER returned.
func (r *registrar) expectNoChange(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("unexpected presence report %q", c)
	default:
	}
}

func register(t *testing.T, p *siptest.Phone, r *registrar, o siptest.RegisterOptions) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.RegisterWith(ctx, r.Addr(), "demo"+p.User, o)
	if err != nil {
		t.Fatalf("REGISTER of %s: %v", p.User, err)
	}
	return res
}

// contacts returns the Contact URIs of a 200 with their expires.
func contacts(res *sip.Response) map[string]string {
	out := make(map[string]string)
	for _, h := range res.GetHeaders("Contact") {
		c := h.(*sip.ContactHeader)
		out[c.Address.String()], _ = c.Params.Get("expires")
	}
	return out
}

func sources(bs []hsip.Binding) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Source
	}
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 500 {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRegisterTwoDevicesUnregisterOne(t *testing.T) {
	r := startRegistrar(t, hsip.Options{})
	desk := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	soft := siptest.NewPhone(t, "127.0.6.3", "1001", 32100, siptest.Busy)
	if res := register(t, desk, r, siptest.RegisterOptions{}); res.StatusCode != 200 {
		t.Fatalf("desk REGISTER -> %d", res.StatusCode)
	}
	r.expect(t, "1001 reachable")
	res := register(t, soft, r, siptest.RegisterOptions{})
	want := map[string]string{desk.ContactURI(): "300", soft.ContactURI(): "300"}
	if got := contacts(res); res.StatusCode != 200 || !mapsEqual(got, want) {
		t.Fatalf("soft REGISTER -> %d contacts %v, want 200 listing %v", res.StatusCode, got, want)
	}
	if got := sources(r.Registrar().Devices("1001")); !slices.Equal(got, []string{soft.Addr.String(), desk.Addr.String()}) {
		t.Fatalf("devices %v, want soft then desk", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := desk.Unregister(ctx, r.Addr(), "demo1001")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("desk unregister: %v %v", res, err)
	}
	if got := contacts(res); !mapsEqual(got, map[string]string{soft.ContactURI(): "300"}) {
		t.Errorf("200 to the unregister lists %v, want only soft", got)
	}
	if got := sources(r.Registrar().Devices("1001")); !slices.Equal(got, []string{soft.Addr.String()}) {
		t.Fatalf("after desk left: devices %v, want soft (still rung)", got)
	}
	r.expectNoChange(t)

	if res, err := soft.Unregister(ctx, r.Addr(), "demo1001"); err != nil || res.StatusCode != 200 {
		t.Fatalf("soft unregister: %v %v", res, err)
	}
	r.expect(t, "1001 offline")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRegisterWildcard(t *testing.T) {
	r := startRegistrar(t, hsip.Options{})
	p := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	own := "<" + p.ContactURI() + ">"
	res := register(t, p, r, siptest.RegisterOptions{Contacts: []string{own, "<sip:1001@127.0.6.59:5062>"}})
	if res.StatusCode != 200 || len(contacts(res)) != 2 {
		t.Fatalf("two contacts -> %d %v", res.StatusCode, contacts(res))
	}
	r.expect(t, "1001 reachable")
	for _, bad := range []siptest.RegisterOptions{
		{Contacts: []string{"*"}, Expires: "300"},
		{Contacts: []string{"*"}, Expires: "-"},
		{Contacts: []string{"*", own}, Expires: "0"},
	} {
		if res := register(t, p, r, bad); res.StatusCode != 400 {
			t.Errorf("Contact %v Expires %q -> %d, want 400", bad.Contacts, bad.Expires, res.StatusCode)
		}
	}
	if n := len(r.Registrar().Bindings()); n != 2 {
		t.Fatalf("%d bindings after refused wildcards, want 2", n)
	}
	res = register(t, p, r, siptest.RegisterOptions{Contacts: []string{"*"}, Expires: "0"})
	if res.StatusCode != 200 || len(contacts(res)) != 0 {
		t.Fatalf("Contact * Expires 0 -> %d %v, want 200 listing nothing", res.StatusCode, contacts(res))
	}
	r.expect(t, "1001 offline")
	if n := len(r.Registrar().Bindings()); n != 0 {
		t.Errorf("%d bindings after *, want 0", n)
	}
}

func TestRegisterIntervalTooBrief(t *testing.T) {
	r := startRegistrar(t, hsip.Options{})
	p := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	for _, o := range []siptest.RegisterOptions{
		{Expires: "30"},
		{Expires: "300", Contacts: []string{"<" + p.ContactURI() + ">;expires=10"}},
	} {
		res := register(t, p, r, o)
		if h := res.GetHeader("Min-Expires"); res.StatusCode != 423 || h == nil || h.Value() != "60" {
			t.Errorf("Expires %q contacts %v -> %d Min-Expires %v, want 423 with Min-Expires: 60", o.Expires, o.Contacts, res.StatusCode, h)
		}
	}
	if n := len(r.Registrar().Bindings()); n != 0 {
		t.Fatalf("%d bindings after 423s, want 0", n)
	}
	res := register(t, p, r, siptest.RegisterOptions{Expires: "99999999999"})
	if got := contacts(res); res.StatusCode != 200 || got[p.ContactURI()] != "3600" {
		t.Errorf("Expires 99999999999 -> %d %v, want 200 granting 3600", res.StatusCode, got)
	}
}

// RFC 3261 §10.3: a REGISTER with the Call-ID of a binding and a CSeq not
// above the stored one is an old request overtaken on the way: refused with
// 500, the binding untouched.
func TestRegisterCSeqOrder(t *testing.T) {
	r := startRegistrar(t, hsip.Options{})
	p := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	// The challenged try uses CSeq, the authenticated one CSeq+1.
	if res := register(t, p, r, siptest.RegisterOptions{CallID: "order-1", CSeq: 10}); res.StatusCode != 200 {
		t.Fatalf("CSeq 11 -> %d", res.StatusCode)
	}
	r.expect(t, "1001 reachable")
	for _, cseq := range []uint32{5, 10} { // authenticated as 6, then 11 (equal)
		res := register(t, p, r, siptest.RegisterOptions{CallID: "order-1", CSeq: cseq, Expires: "0"})
		if res.StatusCode != 500 {
			t.Errorf("old unregister (CSeq %d) -> %d, want 500", cseq+1, res.StatusCode)
		}
	}
	if n := len(r.Registrar().Devices("1001")); n != 1 {
		t.Fatalf("an out-of-order unregister removed the device (%d left)", n)
	}
	r.expectNoChange(t)
	if res := register(t, p, r, siptest.RegisterOptions{CallID: "after-reboot", CSeq: 1}); res.StatusCode != 200 {
		t.Errorf("a new Call-ID with a low CSeq -> %d, want 200", res.StatusCode)
	}
	if res := register(t, p, r, siptest.RegisterOptions{CallID: "after-reboot", CSeq: 20, Expires: "0"}); res.StatusCode != 200 {
		t.Errorf("unregister with a higher CSeq -> %d, want 200", res.StatusCode)
	}
	r.expect(t, "1001 offline")
}

func TestRegisterSeveralContacts(t *testing.T) {
	r := startRegistrar(t, hsip.Options{})
	p := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	const instance = "<urn:uuid:00000000-0000-0000-0000-000000000001>"
	res := register(t, p, r, siptest.RegisterOptions{Contacts: []string{
		"<sip:1001@127.0.6.2:5071>",
		`<sip:1001@127.0.6.2:5072>;expires=120, <sip:1001@127.0.6.2:5073>;+sip.instance="` + instance + `"`,
	}})
	want := map[string]string{"sip:1001@127.0.6.2:5071": "300", "sip:1001@127.0.6.2:5072": "120", "sip:1001@127.0.6.2:5073": "300"}
	if got := contacts(res); res.StatusCode != 200 || !mapsEqual(got, want) {
		t.Fatalf("three contacts in two headers -> %d %v, want %v", res.StatusCode, got, want)
	}
	// The device with an instance id moves to a new address: still one device.
	res = register(t, p, r, siptest.RegisterOptions{Contacts: []string{`<sip:1001@127.0.6.2:5074>;+sip.instance="` + instance + `"`}})
	delete(want, "sip:1001@127.0.6.2:5073")
	want["sip:1001@127.0.6.2:5074"] = "300"
	if got := contacts(res); res.StatusCode != 200 || !mapsEqual(got, want) {
		t.Fatalf("instance moved -> %d %v, want %v", res.StatusCode, got, want)
	}
	var keyed []string
	for _, b := range r.Registrar().Bindings() {
		if b.Instance != "" {
			keyed = append(keyed, b.Key+" "+b.Contact.String())
		}
	}
	if !slices.Equal(keyed, []string{instance + " sip:1001@127.0.6.2:5074"}) {
		t.Errorf("devices by instance: %v", keyed)
	}
	// No Contact: a query, answered with every current contact.
	if got := contacts(register(t, p, r, siptest.RegisterOptions{Contacts: []string{}})); len(got) != 3 {
		t.Errorf("query lists %v, want the 3 contacts", got)
	}
}

// A phone registered through a proxy (Path, RFC 3327) is reached through
// that proxy: the qualify OPTIONS goes to the first Path hop, with the Path
// as Route headers, to the Contact as Request-URI; not to where the
// REGISTER came from nor to the Contact.
func TestRegisterPathRoutesThroughProxy(t *testing.T) {
	r := startRegistrar(t, hsip.Options{Qualify: 200 * time.Millisecond})
	edge := listenUDP(t, "127.0.6.51:32051")  // forwards the REGISTER to us
	proxy := listenUDP(t, "127.0.6.50:32050") // first Path hop
	path := "<sip:127.0.6.50:32050;lr>, <sip:127.0.6.52:32052;lr>"
	contact := "sip:1001@127.0.6.59:5060" // nobody listens there
	res := registerRaw(t, edge, r, "Path: "+path+"\r\nSupported: path\r\nContact: <"+contact+">\r\n")
	if !strings.HasPrefix(res, "SIP/2.0 200") || !strings.Contains(res, "\r\nSupported: path\r\n") || !strings.Contains(res, "\r\nPath: "+path+"\r\n") {
		t.Fatalf("REGISTER with Path got:\n%s\nwant 200 with Supported: path and the Path echoed", res)
	}
	r.expect(t, "1001 reachable")

	_ = proxy.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, from, err := proxy.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no OPTIONS reached the proxy: %v", err)
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Method != sip.OPTIONS || req.Recipient.String() != contact {
		t.Fatalf("proxy got %q, want OPTIONS %s", buf[:n], contact)
	}
	var routes []string
	for _, h := range req.GetHeaders("Route") {
		routes = append(routes, h.Value())
	}
	if want := []string{"<sip:127.0.6.50:32050;lr>", "<sip:127.0.6.52:32052;lr>"}; !slices.Equal(routes, want) {
		t.Errorf("Route headers %q, want %q", routes, want)
	}
	if from.String() != r.Addr().String() {
		t.Errorf("OPTIONS came from %s, want our SIP socket %s", from, r.Addr())
	}
	if d := r.Registrar().Devices("1001"); len(d) != 1 || d[0].Source != edge.LocalAddr().String() || len(d[0].Path) != 2 {
		t.Errorf("device %+v, want the REGISTER's source and a Path of 2", d)
	}
}

func listenUDP(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// registerRaw sends a REGISTER for 1001 from conn with extra headers,
// answers the challenge, and returns the final response as text.
func registerRaw(t *testing.T, conn net.PacketConn, r *registrar, extra string) string {
	t.Helper()
	chal := challengeOf(t, sendRegister(t, conn, r, 1, extra))
	return sendRegister(t, conn, r, 2, extra+"Authorization: "+authorization(t, chal, fmt.Sprintf("sip:%s", r.Addr()))+"\r\n")
}

// sendRegister sends one REGISTER for 1001 and returns the response as text.
func sendRegister(t *testing.T, conn net.PacketConn, r *registrar, cseq int, extra string) string {
	t.Helper()
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-raw-%d\r\nMax-Forwards: 69\r\n"+
		"From: <sip:1001@%s>;tag=raw\r\nTo: <sip:1001@%s>\r\nCall-ID: raw-1\r\nCSeq: %d REGISTER\r\n%sExpires: 300\r\nContent-Length: 0\r\n\r\n",
		r.Addr(), conn.LocalAddr(), cseq, r.Addr().Addr(), r.Addr().Addr(), cseq, extra)
	if _, err := conn.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(r.Addr())); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer to REGISTER: %v", err)
	}
	return string(buf[:n])
}

func challengeOf(t *testing.T, res string) *digest.Challenge {
	t.Helper()
	m, err := sip.ParseMessage([]byte(res))
	first, ok := m.(*sip.Response)
	if err != nil || !ok || first.StatusCode != 401 || first.GetHeader("WWW-Authenticate") == nil {
		t.Fatalf("got %q, want a 401 challenge", res)
	}
	chal, err := digest.ParseChallenge(first.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	return chal
}

func authorization(t *testing.T, chal *digest.Challenge, uri string) string {
	t.Helper()
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: uri, Username: "1001", Password: "demo1001"})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// What a phone sees for the digest details: a nonce we never issued gets
// a fresh challenge (not stale), a reused one stale=true, a digest uri
// other than the Request-URI 400.
func TestRegisterDigestDetails(t *testing.T) {
	r := startRegistrar(t, hsip.Options{})
	conn := listenUDP(t, "127.0.6.53:32053")
	contact := "Contact: <sip:1001@127.0.6.53:32053>\r\n"
	uri := fmt.Sprintf("sip:%s", r.Addr())
	chal := challengeOf(t, sendRegister(t, conn, r, 1, contact))

	forged := *chal
	forged.Nonce = strings.Repeat("ab", 32)
	res := sendRegister(t, conn, r, 2, contact+"Authorization: "+authorization(t, &forged, uri)+"\r\n")
	if fresh := challengeOf(t, res); fresh.Stale || fresh.Nonce == forged.Nonce {
		t.Errorf("nonce never issued -> stale=%v nonce %s, want a fresh challenge without stale", fresh.Stale, fresh.Nonce)
	}
	if res := sendRegister(t, conn, r, 3, contact+"Authorization: "+authorization(t, chal, "sip:127.0.6.1:5999")+"\r\n"); !strings.HasPrefix(res, "SIP/2.0 400") {
		t.Errorf("digest uri other than the Request-URI got %q, want 400", strings.SplitN(res, "\r\n", 2)[0])
	}
	good := contact + "Authorization: " + authorization(t, chal, uri) + "\r\n"
	if res := sendRegister(t, conn, r, 4, good); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("right answer got %q", strings.SplitN(res, "\r\n", 2)[0])
	}
	if again := challengeOf(t, sendRegister(t, conn, r, 5, good)); !again.Stale {
		t.Error("a used nonce got a challenge without stale=true")
	}
}

// A device that misses two probes in a row is unreachable but kept, and
// back on its first answer.
func TestQualifyUnreachableAndBack(t *testing.T) {
	r := startRegistrar(t, hsip.Options{Qualify: 200 * time.Millisecond})
	alive := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	flaky := siptest.NewPhone(t, "127.0.6.3", "1002", 32100, siptest.Busy)
	for _, p := range []*siptest.Phone{alive, flaky} {
		if res := register(t, p, r, siptest.RegisterOptions{}); res.StatusCode != 200 {
			t.Fatalf("register %s -> %d", p.User, res.StatusCode)
		}
	}
	r.expect(t, "1001 reachable", "1002 reachable")
	flaky.SetSilent(true)
	r.expect(t, "1002 unreachable")
	if d := r.Registrar().Devices("1002"); len(d) != 0 {
		t.Errorf("unreachable agent still has devices to ring: %v", sources(d))
	}
	if n := len(r.Registrar().Bindings()); n != 2 {
		t.Errorf("%d bindings, want 2: an unreachable device is kept", n)
	}
	seen := flaky.OptionsReceived()
	flaky.SetSilent(false)
	r.expect(t, "1002 reachable")
	if flaky.OptionsReceived() <= seen {
		t.Error("back without a probe")
	}
	if _, ok := r.Registrar().Lookup("1001"); !ok {
		t.Error("the phone that always answered is not reachable")
	}
}

// Registrations survive a restart: the new server restores them from the
// store, tells their presence and probes them at once.
func TestBindingsSurviveRestart(t *testing.T) {
	saved := siptest.NewMemBindings()
	r1 := startRegistrar(t, hsip.Options{Bindings: saved})
	udp := siptest.NewPhone(t, "127.0.6.2", "1001", 32000, siptest.Busy)
	tcp := siptest.NewPhone(t, "127.0.6.3", "1002", 32100, siptest.Busy)
	dead := siptest.NewPhone(t, "127.0.6.4", "1003", 32200, siptest.Busy)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range []*siptest.Phone{udp, dead} {
		if res, err := p.Register(ctx, r1.Addr(), "demo"+p.User); err != nil || res.StatusCode != 200 {
			t.Fatalf("register %s: %v %v", p.User, res, err)
		}
	}
	if res, err := tcp.RegisterTCP(ctx, r1.Addr(), "demo1002"); err != nil || res.StatusCode != 200 {
		t.Fatalf("register over TCP: %v %v", res, err)
	}
	r1.expect(t, "1001 reachable", "1002 reachable", "1003 reachable")
	if stored, _ := saved.LoadBindings(ctx); len(stored) != 3 {
		t.Fatalf("%d bindings stored, want 3", len(stored))
	}
	saved.PutBinding(store.Binding{User: "9999", Key: "sip:9999@127.0.6.5", Contact: "sip:9999@127.0.6.5", Source: "127.0.6.5:5060",
		Transport: "UDP", Expires: time.Now().Add(time.Hour)}) // an agent deleted from the config meanwhile
	r1.stop()
	dead.Close()
	probesBefore := udp.OptionsReceived()

	r2 := startRegistrar(t, hsip.Options{Bindings: saved, Qualify: time.Second})
	r2.expect(t, "1001 reachable", "1002 unreachable", "1003 reachable")
	if stored, _ := saved.LoadBindings(ctx); len(stored) != 3 {
		t.Errorf("%d bindings stored after the restart, want 3 (not the deleted agent's)", len(stored))
	}
	if b, ok := r2.Registrar().Lookup("1001"); !ok || b.Source != udp.Addr.String() {
		t.Errorf("restored 1001 = %+v %v, want its phone's address", b, ok)
	}
	waitFor(t, "the restored phone probed", func() bool { return udp.OptionsReceived() > probesBefore })
	r2.expect(t, "1003 unreachable") // restored, but its phone is gone
	if res, err := tcp.RegisterTCP(ctx, r2.Addr(), "demo1002"); err != nil || res.StatusCode != 200 {
		t.Fatalf("register again over TCP: %v %v", res, err)
	}
	r2.expect(t, "1002 reachable")

	if res, err := udp.Unregister(ctx, r2.Addr(), "demo1001"); err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
	if stored, _ := saved.LoadBindings(ctx); len(stored) != 2 {
		t.Errorf("%d bindings stored after an unregister, want 2", len(stored))
	}
}
