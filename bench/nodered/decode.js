// Node-RED function node: a TTS v3 uplink of an Elvaco CMi4110 -> one InfluxDB point.
//
// Written for lorameter's Node-RED comparison (bench/nodered.py) from the frame layout, not
// from any vendor codec. CMi4110 User's Manual v1.3, 6.6.2: byte 0 is the message format
// (0x00 Standard), then EN 13757-3 data records, each DIF [DIFE...] VIF [VIFE...] DATA:
//   0C06 energy (BCD8, kWh)        0C14 volume (BCD8, 0.01 m3)  0B2D power (BCD6, 100 W)
//   0B3B flow (BCD6, l/h)          0A5A flow temp (BCD4, 0.1 C) 0A5E return temp (BCD4, 0.1 C)
//   0C78 meter ID (BCD8)           02FD17 error flags (uint16)
// DIF bits 3-0 give the data coding and length, bit 6 the storage number, bits 5-4 the
// function (3 = value during error state); VIF bits 6-0 index EN 13757-3's primary table
// (0x7B/0x7D switch to the extension tables). Field names and units are lorameter's.
// The message arrives parsed (mqtt in, output "a parsed JSON object"); msg.payload becomes
// {measurement, tags, fields, timestamp} for the join -> influxdb batch nodes.

const LENGTHS = { 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 6: 6, 7: 8, 9: 1, 10: 2, 11: 3, 12: 4, 14: 6 };
const REQUIRED = ["energy_heat_kwh", "volume_m3", "power_w", "flow_m3h", "flow_temp_c",
    "return_temp_c", "meter_serial", "error_flags"];

function scaled(value, exponent) {  // value * 10^exponent, dividing for negative exponents
    return exponent >= 0 ? value * 10 ** exponent : value / 10 ** -exponent;
}

function bcd(bytes, start, end) {  // least significant byte first
    let text = "";
    for (let i = end - 1; i >= start; i--) {
        text += (bytes[i] >> 4).toString(16) + (bytes[i] & 0x0f).toString(16);
    }
    if (!/^[0-9]+$/.test(text)) {
        throw new Error("invalid BCD " + text + " at byte " + start);
    }
    return text;
}

function binary(bytes, start, end) {  // little-endian signed integer
    let value = 0;
    for (let i = end - 1; i >= start; i--) {
        value = value * 256 + bytes[i];
    }
    const bits = 8 * (end - start);
    return bits > 0 && bytes[end - 1] & 0x80 ? value - 2 ** bits : value;
}

// (field, exponent of the value in the field's unit) for one VIF chain; null: not ours.
function meaning(vif, ext) {
    const code = vif & 0x7f;
    if (code <= 0x07) return ["energy_heat_kwh", code - 6];  // 10^(n-3) Wh
    if (code <= 0x0f) return ["energy_heat_j", code - 8];  // 10^n J
    if (code >= 0x10 && code <= 0x17) return ["volume_m3", code - 0x10 - 6];
    if (code >= 0x28 && code <= 0x2f) return ["power_w", code - 0x28 - 3];
    if (code >= 0x38 && code <= 0x3f) return ["flow_m3h", code - 0x38 - 6];
    if (code >= 0x58 && code <= 0x5b) return ["flow_temp_c", code - 0x58 - 3];
    if (code >= 0x5c && code <= 0x5f) return ["return_temp_c", code - 0x5c - 3];
    if (code === 0x78) return ["meter_serial", 0];
    if (code === 0x7b && ext !== undefined && (ext & 0x7e) === 0x00) {
        return ["energy_heat_kwh", (ext & 1) + 2];  // 10^(n-1) MWh
    }
    if (code === 0x7b && ext !== undefined && (ext & 0x7e) === 0x08) {
        return ["energy_heat_j", (ext & 1) + 8];  // 10^(n-1) GJ
    }
    if (code === 0x7d && ext !== undefined && (ext & 0x7f) === 0x17) return ["error_flags", 0];
    return null;
}

function decodeStandard(bytes) {
    if (bytes.length === 0 || bytes[0] !== 0x00) {
        throw new Error("not a Standard message (format byte " + bytes[0] + ")");
    }
    const fields = {};
    let pos = 1;
    while (pos < bytes.length) {
        const dif = bytes[pos++];
        const coding = dif & 0x0f;
        if (!(coding in LENGTHS)) throw new Error("unsupported DIF " + dif + " at " + (pos - 1));
        let storage = (dif >> 6) & 1;
        let more = dif & 0x80;
        while (more) {  // DIFEs: a storage number above 1 is not a current value
            if (pos >= bytes.length) throw new Error("truncated DIFE");
            storage |= (bytes[pos] & 0x0f) << 1;
            more = bytes[pos++] & 0x80;
        }
        if (pos >= bytes.length) throw new Error("truncated VIF");
        const vif = bytes[pos++];
        let ext;
        if (vif & 0x80) {
            if (pos >= bytes.length) throw new Error("truncated VIFE");
            ext = bytes[pos++];
            while (bytes[pos - 1] & 0x80) {  // further VIFEs
                if (pos >= bytes.length) throw new Error("truncated VIFE");
                pos++;
            }
        }
        const size = LENGTHS[coding];
        if (pos + size > bytes.length) throw new Error("record truncated at " + pos);
        const start = pos;
        pos += size;
        const known = meaning(vif, ext);
        if (known === null) throw new Error("unsupported VIF " + vif + " at " + (start - 1));
        if (storage !== 0 || (dif >> 4 & 3) === 3) continue;  // stored or error-state value
        const isBcd = coding >= 9;
        const [field, exponent] = known;
        if (field === "meter_serial") {
            fields[field] = isBcd ? bcd(bytes, start, pos) : String(binary(bytes, start, pos));
            continue;
        }
        const raw = isBcd ? Number(bcd(bytes, start, pos)) : binary(bytes, start, pos);
        if (field === "error_flags") {
            fields[field] = raw;
        } else if (field === "energy_heat_j") {
            fields.energy_heat_kwh = Number((scaled(raw, exponent) / 3.6e6).toPrecision(12));
        } else {
            fields[field] = Number(scaled(raw, exponent).toPrecision(12));
        }
    }
    for (const field of REQUIRED) {
        if (!(field in fields)) throw new Error("Standard message lacks " + field);
    }
    return fields;
}

const up = msg.payload.uplink_message || {};
if (up.f_port !== 2) {
    node.error("unexpected fPort " + up.f_port, msg);
    return null;
}
let fields;
try {
    fields = decodeStandard(Buffer.from(up.frm_payload || "", "base64"));
} catch (err) {
    node.error(err.message, msg);
    return null;
}
msg.payload = {
    measurement: "heat",
    tags: {
        device: msg.payload.end_device_ids.device_id,
        meter: fields.meter_serial,
        decoder: "elvaco_cmi4110",
        source: "live",
    },
    fields: fields,
    timestamp: new Date(up.received_at || msg.payload.received_at),
};
return msg;
