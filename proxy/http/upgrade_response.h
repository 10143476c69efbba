// The backend side of the WebSocket opening handshake (RFC 6455 §4.1, §4.2.2): what
// a backend's 101 must carry before the session relays frames, and the
// Sec-WebSocket-Accept value a key calls for. Pure; no I/O.
//
// A backend's answer reaches the session as one or more heads in one buffer (see
// MessageParser::is_interim and start_next): interim 1xx heads go to the client as
// they come (RFC 9110 §15.2), an answer other than 101 goes to the client unchanged
// (SPEC §3), and a 101 is checked here first.
//
// Accepted 101: status line "HTTP/1.1 101"; exactly one Upgrade header whose value is
// "websocket" (case-insensitive, RFC 6455 §4.1 client rule 2); a Connection header
// (any of them, RFC 9110 §7.6.1) holding the "upgrade" token; exactly one
// Sec-WebSocket-Accept equal to websocket_accept(client key) (case-sensitive: it is
// base64); no Transfer-Encoding and no Content-Length but 0 (a 1xx has no body, RFC
// 9110 §8.6, RFC 9112 §6.1: frames follow the head).
// Refused (502, SPEC §3 "a backend error"): anything else, HTTP/1.0 101 included.
// Sec-WebSocket-Protocol and -Extensions are negotiated end to end and not checked.
#pragma once

#include <string>
#include <string_view>

#include "http/handshake.h"
#include "http/message_parser.h"

namespace sb::http {

// base64(SHA-1(client_key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), RFC 6455 §4.2.2
// step 5.4: the Sec-WebSocket-Accept a 101 answering `client_key` must carry (and the
// one switchboard sends when it completes an upgrade itself). Always 28 characters.
std::string websocket_accept(std::string_view client_key);

// The 101 switchboard sends when it completes an upgrade itself (SPEC §3 Admission:
// a shed connection is told why in a Close frame, which only a WebSocket can carry).
// It names `subprotocol` when it is not empty and selects no extension.
std::string own_upgrade_response(std::string_view client_key, std::string_view subprotocol);

// The first subprotocol the request offers in Sec-WebSocket-Protocol (RFC 6455
// §4.1: a list of tokens, in the client's order of preference), or "" when it offers
// none or the first is not a valid token (it is then echoed nowhere).
std::string_view first_subprotocol(std::string_view buffer, const MessageParser& parser);

// Checks the complete, final (not interim) response head the parser describes in
// `buffer` (header spans are offsets into the whole buffer, so heads before it may
// stay there) against the key of the client's request. Returns Status::Ok, or
// Status::BadGateway with a reason naming what was wrong, e.g. "backend's 101 has no
// matching Sec-WebSocket-Accept". A head whose status is not 101 is refused too:
// call this only for a 101.
HandshakeResult check_upgrade_response(std::string_view buffer, const MessageParser& parser,
                                       std::string_view client_key);

}  // namespace sb::http
