package sip

import (
	"github.com/emiago/sipgo/sip"
)

// Protocol strictness. sipgo's parser accepts requests RFC 3261 says a
// server must refuse: another SIP version, Max-Forwards 0, a top Via without
// a branch, two Content-Length headers (the stream framing then depends on
// which one a hop believes: request smuggling). They are answered before
// sipgo sees them (no transaction is created; a retransmission gets the same
// stateless answer), by the UDP read filter and the TCP stream check.

// refusal is the stateless answer a request gets, or code 0 to accept it.
type refusal struct {
	code   int
	reason string
}

// checkRequest says whether req breaks a rule sipgo's parser lets through.
func checkRequest(req *sip.Request) refusal {
	if req.SipVersion != "SIP/2.0" {
		return refusal{505, "Version Not Supported"}
	}
	if v := req.Via(); v == nil || v.Params == nil {
		return refusal{400, "Bad Request (Via without branch)"}
	} else if b, ok := v.Params.Get("branch"); !ok || b == "" {
		return refusal{400, "Bad Request (Via without branch)"}
	}
	if len(req.GetHeaders("Content-Length")) > 1 {
		return refusal{400, "Bad Request (more than one Content-Length)"}
	}
	// RFC 3261 §16.3 step 3: an OPTIONS may be answered by its final
	// recipient (Max-Forwards 0 is how the next hop is pinged); anything else
	// with no hops left is refused. We are a B2BUA: this is also what stops a
	// call looping through us and back.
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Method != sip.OPTIONS {
		return refusal{483, "Too Many Hops"}
	}
	return refusal{}
}

// refusalFor is the raw response to req from source (ip:port, for Via
// received/rport), or nil when req gets none (an ACK is never answered).
func refusalFor(req *sip.Request, r refusal, source string) []byte {
	if req.IsAck() {
		return nil
	}
	req.SetSource(source)
	res := sip.NewResponseFromRequest(req, r.code, r.reason, nil)
	res.SipVersion = "SIP/2.0" // also to a SIP/1.0 request: it says which version we speak
	return []byte(res.String())
}
