#include "daemon/control_codec.hpp"

#include <algorithm>
#include <array>
#include <bit>

namespace rp::daemon {
namespace {

using Json = nlohmann::json;

constexpr std::array<ControlCommandSpec, 6> k_commands = {{
    {"check", ControlCmd::check, k_field_ip, 0, false, "may IP relay now, and why"},
    {"list", ControlCmd::list, 0, k_field_static | k_field_user | k_field_network | k_field_source, false,
     "the live permits (streamed), optionally only those of a user, network or source; or the static allow list"},
    {"allow", ControlCmd::allow, k_field_ip, k_field_user | k_field_ttl, false, "grant a permit (through the policy)"},
    {"revoke", ControlCmd::revoke, 0, k_field_ip | k_field_user, true, "remove the permits of an IP or a user"},
    {"status", ControlCmd::status, 0, 0, false, "counters"},
    {"import", ControlCmd::import_permits, k_field_format | k_field_entries, k_field_ttl | k_field_dry_run, false,
     "grant a batch of permits read from an older system (through the policy)"},
}};

struct FieldName {
    ControlField bit;
    std::string_view name;
};
constexpr std::array<FieldName, 9> k_fields = {{{k_field_ip, "ip"},
                                                {k_field_user, "user"},
                                                {k_field_ttl, "ttl_ms"},
                                                {k_field_format, "format"},
                                                {k_field_entries, "entries"},
                                                {k_field_dry_run, "dry_run"},
                                                {k_field_static, "static"},
                                                {k_field_network, "network"},
                                                {k_field_source, "source"}}};

core::Error field_error(std::string_view field, std::string_view what) {
    return core::make_error("field '" + std::string(field) + "' " + std::string(what));
}

}  // namespace

core::Result<core::Address> parse_ip_field(const Json& v) {
    if (!v.is_string()) return field_error("ip", "must be a string");
    const auto& text = v.get_ref<const std::string&>();
    auto a = core::Address::parse(text);
    if (!a) return core::make_error("not an IP address: '" + text.substr(0, 64) + "'");
    return *a;
}

namespace {

// A string field that reaches log lines: bounded, no control characters.
core::Result<std::string> parse_text_field(const Json& v, std::string_view field, std::size_t max) {
    if (!v.is_string()) return field_error(field, "must be a string");
    const auto& text = v.get_ref<const std::string&>();
    if (text.size() > max) return field_error(field, "is longer than " + std::to_string(max) + " bytes");
    if (std::any_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }))
        return field_error(field, "must not contain control characters");
    return text;
}

core::Result<core::Cidr> parse_network_field(const Json& v) {
    if (!v.is_string()) return field_error("network", "must be a string");
    auto c = core::Cidr::parse(v.get_ref<const std::string&>());
    if (!c) return field_error("network", "is not a network: " + c.error().message.substr(0, 128));
    return *c;
}

}  // namespace

core::Result<std::string> parse_user_field(const Json& v) { return parse_text_field(v, "user", k_control_max_user); }

core::Result<core::Duration> parse_ttl_field(const Json& v) {
    std::int64_t ms = 0;
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(k_control_max_ttl_ms))
            return field_error("ttl_ms", "is too large (at most " + std::to_string(k_control_max_ttl_ms) + ")");
        ms = static_cast<std::int64_t>(u);
    } else if (v.is_number_integer()) {
        ms = v.get<std::int64_t>();
    } else if (v.is_number_float()) {
        return field_error("ttl_ms", "must be a whole number of milliseconds");
    } else {
        return field_error("ttl_ms", "must be a number of milliseconds");
    }
    if (ms <= 0) return field_error("ttl_ms", "must be positive");
    if (ms > k_control_max_ttl_ms)
        return field_error("ttl_ms", "is too large (at most " + std::to_string(k_control_max_ttl_ms) + ")");
    return core::Duration(std::chrono::milliseconds(ms));
}

namespace {

// One import entry: {"ip":..., "user":..., "login"|"expires": epoch seconds}.
core::Result<imports::ImportEntry> parse_import_entry(const Json& v, std::size_t i) {
    const std::string where = "entry " + std::to_string(i) + ": ";
    if (!v.is_object()) return core::make_error(where + "must be an object");
    imports::ImportEntry e;
    bool has_ip = false;
    for (const auto& [key, value] : v.items()) {
        if (key == "ip") {
            auto ip = parse_ip_field(value);
            if (!ip) return core::make_error(where + ip.error().message);
            e.ip = *ip;
            has_ip = true;
        } else if (key == "user") {
            auto user = parse_user_field(value);
            if (!user) return core::make_error(where + user.error().message);
            e.user = std::move(*user);
        } else if (key == "login" || key == "expires") {
            if (e.kind != imports::EntryTime::none) return core::make_error(where + "takes 'login' or 'expires', not both");
            if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
                value.get<std::int64_t>() > (std::int64_t{1} << 40))
                return core::make_error(where + "field '" + key + "' must be whole epoch seconds");
            e.kind = key == "login" ? imports::EntryTime::login : imports::EntryTime::expires;
            e.time = core::from_unix_seconds(value.get<std::int64_t>());
        } else {
            return core::make_error(where + "has no field '" + key.substr(0, 64) + "'");
        }
    }
    if (!has_ip) return core::make_error(where + "needs the field 'ip'");
    return e;
}

core::Status parse_import_fields(const Json& req, unsigned present, ControlRequest& out) {
    const auto& format = *req.find("format");
    if (!format.is_string() || !imports::known_import_format(format.get_ref<const std::string&>()))
        return field_error("format", "must name a known import format");
    out.format = format.get<std::string>();
    const auto& entries = *req.find("entries");
    if (!entries.is_array() || entries.empty() || entries.size() > k_control_max_import)
        return field_error("entries", "must be an array of 1 to " + std::to_string(k_control_max_import) + " entries");
    out.entries.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        auto e = parse_import_entry(entries[i], i);
        if (!e) return e.error();
        out.entries.push_back(std::move(*e));
    }
    if (present & k_field_dry_run) {
        const auto& d = *req.find("dry_run");
        if (!d.is_boolean()) return field_error("dry_run", "must be true or false");
        out.dry_run = d.get<bool>();
    }
    return core::ok();
}

// The fields present besides "cmd", checked against the command's row.
core::Result<unsigned> present_fields(const Json& req, const ControlCommandSpec& spec) {
    unsigned present = 0;
    for (const auto& [key, value] : req.items()) {
        if (key == "cmd") continue;
        const auto f = std::find_if(k_fields.begin(), k_fields.end(), [&](const FieldName& n) { return n.name == key; });
        if (f == k_fields.end() || ((spec.required | spec.optional) & f->bit) == 0)
            return core::make_error("'" + std::string(spec.name) + "' takes no field '" + key.substr(0, 64) + "'");
        present |= f->bit;
    }
    for (const auto& f : k_fields)
        if ((spec.required & f.bit) && !(present & f.bit))
            return core::make_error("'" + std::string(spec.name) + "' needs the field '" + std::string(f.name) + "'");
    if (spec.one_of && std::popcount(present & spec.optional) != 1)
        return core::make_error("'" + std::string(spec.name) + "' needs exactly one of the fields 'ip' and 'user'");
    return present;
}

}  // namespace

std::span<const ControlCommandSpec> control_commands() { return k_commands; }

const ControlCommandSpec* find_control_command(std::string_view name) {
    const auto it = std::find_if(k_commands.begin(), k_commands.end(), [&](const auto& c) { return c.name == name; });
    return it == k_commands.end() ? nullptr : &*it;
}

core::Result<ControlRequest> parse_control_request(std::string_view line) {
    const Json req = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded()) return core::make_error("malformed request: not JSON");
    if (!req.is_object()) return core::make_error("malformed request: not a JSON object");
    const auto cmd = req.find("cmd");
    if (cmd == req.end()) return core::make_error("missing field 'cmd'");
    if (!cmd->is_string()) return field_error("cmd", "must be a string");
    const auto* spec = find_control_command(cmd->get_ref<const std::string&>());
    if (!spec) return core::make_error("unknown command '" + cmd->get_ref<const std::string&>().substr(0, 64) + "'");
    auto present = present_fields(req, *spec);
    if (!present) return present.error();
    ControlRequest out;
    out.cmd = spec->cmd;
    if (*present & k_field_ip) {
        auto ip = parse_ip_field(*req.find("ip"));
        if (!ip) return ip.error();
        out.ip = *ip;
    }
    if (*present & k_field_user) {
        auto user = parse_user_field(*req.find("user"));
        if (!user) return user.error();
        if (spec->cmd == ControlCmd::revoke && user->empty())
            return field_error("user", "must not be empty for 'revoke'");  // would match every anonymous permit
        out.user = std::move(*user);
    }
    if (*present & k_field_ttl) {
        auto ttl = parse_ttl_field(*req.find("ttl_ms"));
        if (!ttl) return ttl.error();
        out.ttl = *ttl;
    }
    if (*present & k_field_static) {
        const auto& v = *req.find("static");
        if (!v.is_boolean()) return field_error("static", "must be true or false");
        out.static_list = v.get<bool>();
    }
    if (spec->cmd == ControlCmd::import_permits)
        if (auto st = parse_import_fields(req, *present, out); !st) return st.error();
    if (*present & k_field_network) {
        auto net = parse_network_field(*req.find("network"));
        if (!net) return net.error();
        out.network = *net;
    }
    if (*present & k_field_source) {
        auto source = parse_text_field(*req.find("source"), "source", k_control_max_source);
        if (!source) return source.error();
        out.source = std::move(*source);
    }
    return out;
}

std::string encode_control_reply(const nlohmann::json& reply) {
    return reply.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string control_error_reply(std::string_view message) {
    return encode_control_reply(Json{{"ok", false}, {"error", std::string(message)}});
}

}  // namespace rp::daemon
