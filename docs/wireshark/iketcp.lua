-- ikegate: Wireshark/tshark dissector for IKE and ESP over TCP (RFC 9329, obsoletes RFC 8229).
--
-- Wireshark 4.0 has no RFC 9329 dissector (its "tcpencap" is Cisco's proprietary format). This
-- one strips the "IKETCP" prefix (sent once, by the originator, at the start of its stream) and
-- the 16-bit length framing, reassembles frames across TCP segments, and hands each frame to
-- Wireshark's own dissectors: "isakmp" after a 4-octet zero Non-ESP Marker, "esp" otherwise.
-- A frame whose payload is the single octet 0xFF is a NAT-keepalive (which RFC 9329 forbids on
-- TCP); it is shown with an expert warning.
--
-- Use:   tshark -X lua_script:iketcp.lua -r capture.pcap
--        (or copy to ~/.local/lib/wireshark/plugins/). TCP port 4500 is registered; for TLS on 443
--        give tshark the key log (-o tls.keylog_file:keys.log) and the decrypted stream is
--        dissected too. Other ports: "Decode As..." IKETCP, or -d tcp.port==PORT,iketcp.

local iketcp = Proto("iketcp", "IKE/ESP over TCP (RFC 9329)")

local f_prefix = ProtoField.string("iketcp.prefix", "Stream prefix")
local f_length = ProtoField.uint16("iketcp.length", "Length", base.DEC)
local f_marker = ProtoField.uint32("iketcp.non_esp_marker", "Non-ESP Marker", base.HEX)
local f_kind = ProtoField.string("iketcp.kind", "Frame kind")
local f_keepalive = ProtoField.uint8("iketcp.keepalive", "NAT-Keepalive", base.HEX)
iketcp.fields = { f_prefix, f_length, f_marker, f_kind, f_keepalive }

local e_bad_length = ProtoExpert.new("iketcp.bad_length", "Frame length below 3 (RFC 9329 §3)",
  expert.group.MALFORMED, expert.severity.ERROR)
local e_keepalive = ProtoExpert.new("iketcp.keepalive_on_tcp", "NAT-keepalive on TCP (RFC 9329 §3: not to be sent)",
  expert.group.PROTOCOL, expert.severity.WARN)
local e_short = ProtoExpert.new("iketcp.short_frame", "Frame too short for an IKE message or ESP header",
  expert.group.MALFORMED, expert.severity.ERROR)
iketcp.experts = { e_bad_length, e_keepalive, e_short }

local isakmp = Dissector.get("isakmp")
local esp = Dissector.get("esp")

local PREFIX = "IKETCP"
local NON_ESP_MARKER_LEN = 4
local IKE_HEADER_LEN = 28
local ESP_MIN_LEN = 8

-- Per direction of each conversation: has the start of the stream been examined yet? The
-- prefix is looked for only there (relative TCP sequence numbers would not work inside TLS).
-- Decisions are made on the first, in-order pass and remembered per frame for later passes.
local stream_started = {}
local prefix_in_frame = {}

local function direction_key(pinfo)
  return tostring(pinfo.src) .. ":" .. tostring(pinfo.src_port) .. ">" .. tostring(pinfo.dst) .. ":" .. tostring(pinfo.dst_port)
end

local function dissect_frame(tvb, pinfo, tree, offset, frame_len)
  local sub = tree:add(iketcp, tvb(offset, frame_len))
  sub:add(f_length, tvb(offset, 2))
  local body_off = offset + 2
  local body_len = frame_len - 2
  if body_len == 1 and tvb(body_off, 1):uint() == 0xFF then
    sub:add(f_kind, "NAT-keepalive")
    sub:add(f_keepalive, tvb(body_off, 1)):add_proto_expert_info(e_keepalive)
    return
  end
  if body_len >= NON_ESP_MARKER_LEN and tvb(body_off, 4):uint() == 0 then
    sub:add(f_marker, tvb(body_off, 4))
    sub:add(f_kind, "IKE")
    if body_len - NON_ESP_MARKER_LEN < IKE_HEADER_LEN then
      sub:add_proto_expert_info(e_short)
      return
    end
    isakmp:call(tvb(body_off + 4, body_len - 4):tvb(), pinfo, tree)
    return
  end
  sub:add(f_kind, "ESP")
  if body_len < ESP_MIN_LEN then
    sub:add_proto_expert_info(e_short)
    return
  end
  esp:call(tvb(body_off, body_len):tvb(), pinfo, tree)
end

function iketcp.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  local offset = 0
  local key = direction_key(pinfo)
  local at_start
  if pinfo.visited then
    at_start = prefix_in_frame[pinfo.number] == true
  else
    at_start = not stream_started[key]
  end
  if at_start then
    local have = math.min(len, #PREFIX)
    if tvb(0, have):string() == PREFIX:sub(1, have) then
      if have < #PREFIX then
        pinfo.desegment_offset = 0
        pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
        return len
      end
      tree:add(iketcp, tvb(0, #PREFIX)):add(f_prefix, tvb(0, #PREFIX))
      offset = #PREFIX
      prefix_in_frame[pinfo.number] = true
    end
    if not pinfo.visited then stream_started[key] = true end
  end
  pinfo.cols.protocol = "IKETCP"
  while offset < len do
    local remaining = len - offset
    if remaining < 2 then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      return len
    end
    local frame_len = tvb(offset, 2):uint()
    if frame_len < 3 then
      tree:add(iketcp, tvb(offset, 2)):add_proto_expert_info(e_bad_length)
      return len
    end
    if remaining < frame_len then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = frame_len - remaining
      return len
    end
    dissect_frame(tvb, pinfo, tree, offset, frame_len)
    offset = offset + frame_len
  end
  return len
end

DissectorTable.get("tcp.port"):add(4500, iketcp)
local tls_port = DissectorTable.get("tls.port")
if tls_port then tls_port:add(443, iketcp) end
