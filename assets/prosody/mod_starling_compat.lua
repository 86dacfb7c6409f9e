-- Test bed only (written next to the test server's config by starling::testbed).
--
-- Debian 12 ships Prosody 0.12.3 with a 2023 prosody-modules snapshot whose SASL2
-- modules were written for newer Prosody. This shim gives 0.12 what they call, so the
-- test server speaks SASL2 (XEP-0388) with SCRAM-*-PLUS over TLS 1.3 as Prosody 13 does:
--
-- 1. connections get `ssl_info()` and `ssl_exportkeyingmaterial()` (mod_sasl2 calls both
--    on every TLS stream; without them it throws and the login never starts), backed by
--    LuaSec's `info()` and `exportkeyingmaterial()`;
-- 2. the SCRAM-*-PLUS mechanisms accept the `tls-exporter` channel binding (RFC 9266)
--    that mod_sasl2 registers on TLS 1.3; 0.12 lists them for `tls-unique` only, which
--    TLS 1.3 does not have. The binding is still checked by Prosody's own SCRAM code;
--    With `starling_channel_binding = "tls-server-end-point"` in the config, SASL2 binds
--    with RFC 5929's certificate hash instead (as a server behind a TLS terminator must),
--    and the stream features list the channel-binding types (XEP-0440) either way;
-- 3. a SASL2 <authenticate/> uses the SASL handler mod_sasl2 set up (with the channel
--    binding), not the one mod_saslauth puts in its place right after for RFC 6120 SASL;
-- 4. mod_sasl2_fast (XEP-0484) finds the `stream` field it expects in the stream-features
--    event. It reads only whether the stream header named a user, to decide whether to
--    offer FAST at all (the token check uses the name in the login itself); 0.12 keeps
--    no header, so the shim says the client named one (ours always does);
-- 5. util.datetime accepts fractional times, as newer Prosody's does (mod_sasl2_fast
--    passes one for the token expiry; 0.12 on Lua 5.4 throws and the login hangs), and
--    stanzas have `get_child_attr` (mod_sasl2_fast reads the user agent with it).

do
	local stanza_mt = require "util.stanza".stanza_mt;
	if not stanza_mt.get_child_attr then
		function stanza_mt:get_child_attr(name, xmlns, attr)
			local child = self:get_child(name, xmlns);
			return child and child.attr[attr];
		end
	end
	local datetime = require "util.datetime";
	local format = datetime.datetime;
	datetime.datetime = function(t)
		return format(t and math.floor(t));
	end
end

local function patch_connection(conn)
	local mt = getmetatable(conn);
	local interface = mt and mt.__index;
	if type(interface) ~= "table" or interface.ssl_info then return end
	function interface:ssl_info()
		local sock = self:socket();
		if sock and sock.info then return sock:info(); end
	end
	function interface:ssl_exportkeyingmaterial(label, len, context)
		local sock = self:socket();
		if sock and sock.exportkeyingmaterial then
			return sock:exportkeyingmaterial(label, len, context);
		end
	end
	module:log("debug", "added ssl_info and ssl_exportkeyingmaterial to connections");
end

local patched_sasl = false;
local function patch_scram_plus()
	if patched_sasl then return end
	patched_sasl = true;
	local sasl = require "util.sasl";
	local handler = sasl.new(module.host, { plain = function() end });
	local mechanisms = getmetatable(handler).mechanisms;
	for i = 1, 32 do
		local name, bindings = debug.getupvalue(mechanisms, i);
		if name == nil then break end
		if name == "mechanism_channelbindings" then
			for mechanism, types in pairs(bindings) do
				if mechanism:match("^SCRAM%-.*%-PLUS$") then
					types["tls-exporter"] = true;
					types["tls-server-end-point"] = true;
					module:log("debug", "%s accepts tls-exporter and tls-server-end-point", mechanism);
				end
			end
			return;
		end
	end
	module:log("warn", "could not teach SCRAM-*-PLUS tls-exporter");
end

module:hook("stream-features", function(event)
	patch_scram_plus();
	if event.origin.conn then patch_connection(event.origin.conn); end
	if event.stream == nil then
		event.stream = { from = "client@" .. module.host };
	end
end, 100);

local binding = module:get_option_string("starling_channel_binding", "tls-exporter");

-- RFC 5929 §4.1 for the test certificate (ecdsa-with-SHA256): SHA-256 of its DER, read
-- from the configured file.
local end_point;
do
	local ssl = module:get_option("ssl");
	local file = ssl and ssl.certificate and io.open(ssl.certificate);
	if file then
		local der = require "util.x509".pem2der(file:read("*a"));
		file:close();
		end_point = der and require "util.hashes".sha256(der);
	end
end
local function server_end_point()
	return end_point;
end

-- mod_sasl2 runs at priority 1 and mod_saslauth at 0: keep mod_sasl2's handler, with the
-- configured channel binding, and list the types (XEP-0440).
module:hook("stream-features", function(event)
	local handler = event.origin.sasl_handler;
	event.origin.starling_sasl2_handler = handler;
	if not (handler and handler.profile and handler.profile.cb) then return end
	if binding == "tls-server-end-point" then
		handler.profile.cb["tls-exporter"] = nil;
		handler:add_cb_handler("tls-server-end-point", server_end_point);
	end
	local list = event.features:tag("sasl-channel-binding", { xmlns = "urn:xmpp:sasl-cb:0" });
	for name in pairs(handler.profile.cb) do
		list:tag("channel-binding", { type = name }):up();
	end
	list:up();
end, 0.5);

-- Before mod_sasl2_fast (100), which copies the channel bindings from this handler.
module:hook_tag("urn:xmpp:sasl:2", "authenticate", function(session)
	if session.starling_sasl2_handler then
		session.sasl_handler = session.starling_sasl2_handler;
		session.starling_sasl2_handler = nil;
	end
end, 200);
