//! Real OPC UA messages, byte by byte, shared by the unit tests and the benchmark.
//!
//! Each fixture is hex with one comment per field (`//` to the end of the line), extracted with
//! tshark from the captures in `/work/shared/pcaps/cisagov__icsnpp-opcua-binary/`: "mainloop"
//! is `pcaps__open62541_client-server_mainloop.pcap` (channel 4), "with-gap" is
//! `pcaps__opcua_with-gap_with-handshake.pcap` (channel 13, a Siemens/Softing server), and
//! "encrypted" is `pcaps__open62541_client-server_encrypted.pcap`. [`bytes`] turns a fixture
//! into bytes. Not part of the API.

/// The bytes of a commented hex fixture. Non-hex characters are ignored, comments dropped; an
/// odd trailing digit is ignored.
pub fn bytes(fixture: &str) -> Vec<u8> {
    let digits = fixture
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .flat_map(str::chars)
        .filter_map(|c| c.to_digit(16));
    let mut out = Vec::with_capacity(fixture.len() / 2);
    let mut high = None;
    for d in digits {
        match high.take() {
            None => high = Some(d),
            Some(h) => out.push(u8::try_from(h * 16 + d).unwrap_or(0)),
        }
    }
    out
}

/// HEL from open62541 (mainloop capture, frame 6).
pub const HEL: &str = r#"
    48454c 46 38000000 // HEL, F, size 56
    00000000 // protocol version 0
    ffff0000 // receive buffer 65535
    ffff0000 // send buffer 65535
    00000000 // max message size 0
    00000000 // max chunk count 0
    18000000 6f70632e7463703a2f2f6c6f63616c686f73743a34383430 // endpoint URL opc.tcp://localhost:4840
"#;

/// ACK (frame 8).
pub const ACK: &str = r#"
    41434b 46 1c000000 // ACK, F, size 28
    00000000 // protocol version
    ffff0000 // receive buffer 65535
    ffff0000 // send buffer 65535
    00000000 // max message size
    00000000 // max chunk count
"#;

/// OPN request, policy None (frame 10).
pub const OPN_REQ: &str = r#"
    4f504e 46 84000000 // OPN, F, size 132
    00000000 // secure channel id 0
    2f000000 687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c696379234e6f6e65 // policy URI ...#None
    ffffffff // sender certificate null
    ffffffff // receiver thumbprint null
    01000000 // sequence number 1
    01000000 // request id 1
    01 00 be01 // type id: four-byte, ns 0, 446 OpenSecureChannelRequest
    0000 // auth token: two-byte i=0
    caa2e64e2dd1d501 // timestamp
    00000000 // request handle 0
    00000000 // return diagnostics
    ffffffff // audit entry id null
    00000000 // timeout hint
    000000 // additional header: i=0, no body
    00000000 // client protocol version
    00000000 // request type Issue
    01000000 // security mode None
    ffffffff // client nonce null
    c0270900 // requested lifetime 600000 ms
"#;

/// OPN response (frame 12).
pub const OPN_RESP: &str = r#"
    4f504e 46 87000000 // OPN, F, size 135
    03000000 // secure channel id 3
    2f000000 687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c696379234e6f6e65 // policy URI ...#None
    ffffffff // sender certificate null
    ffffffff // receiver thumbprint null
    01000000 // sequence number 1
    01000000 // request id 1
    01 00 c101 // type id 449 OpenSecureChannelResponse
    3a3fee4e2dd1d501 // timestamp
    00000000 // request handle 0
    00000000 // service result Good
    00 // diagnostic info: empty
    ffffffff // string table null
    000000 // additional header
    00000000 // server protocol version
    03000000 // channel id 3
    03000000 // token id 3
    263fee4e2dd1d501 // created at
    c0270900 // revised lifetime 600000
    ffffffff // server nonce null
"#;

/// Read request (frame 84, channel 4).
pub const READ_REQ: &str = r#"
    4d5347 46 79000000 // MSG, F, size 121
    04000000 // secure channel id 4
    04000000 // token id 4
    14000000 // sequence number 20
    14000000 // request id 20
    01 00 7702 // type id 631 ReadRequest
    04 0100 3912161546f36d34fecffcbfbacb4c14 // auth token: guid, ns 1
    bed68b4f2dd1d501 // timestamp
    15000000 // request handle 21
    00000000 // return diagnostics
    ffffffff // audit entry id null
    00000000 // timeout hint
    000000 // additional header
    0000000000000000 // max age 0.0
    00000000 // timestamps to return: Source
    01000000 // 1 ReadValueId
    03 0100 0a000000 7468652e616e73776572 // node id ns=1;s=the.answer
    0d000000 // attribute 13 Value
    ffffffff // index range null
    0000 ffffffff // data encoding: ns 0, null name
"#;

/// Read response (frame 86): one DataValue with status BadNodeIdUnknown.
pub const READ_RESP: &str = r#"
    4d5347 46 41000000 // MSG, F, size 65
    04000000 // secure channel id
    04000000 // token id
    0a000000 // sequence number 10
    14000000 // request id 20
    01 00 7a02 // type id 634 ReadResponse
    cc89934f2dd1d501 // timestamp
    15000000 // request handle 21
    00000000 // service result Good
    00 // diagnostic info empty
    ffffffff // string table null
    000000 // additional header
    01000000 // 1 DataValue
    02 00003480 // mask: status; BadNodeIdUnknown
    ffffffff // diagnostic infos null
"#;

/// Write request (frame 88): ns=1;s=the.answer Value := Int32 1.
pub const WRITE_REQ: &str = r#"
    4d5347 46 6d000000 // MSG, F, size 109
    04000000 04000000 // channel 4, token 4
    15000000 15000000 // sequence 21, request id 21
    01 00 a102 // type id 673 WriteRequest
    04 0100 3912161546f36d34fecffcbfbacb4c14 // auth token
    b28f934f2dd1d501 // timestamp
    16000000 // request handle 22
    00000000 ffffffff 00000000 000000 // diagnostics, audit id, timeout, additional header
    01000000 // 1 WriteValue
    03 0100 0a000000 7468652e616e73776572 // node id ns=1;s=the.answer
    0d000000 // attribute 13 Value
    ffffffff // index range null
    01 06 01000000 // DataValue: value, Variant Int32 1
"#;

/// Write response (frame 90).
pub const WRITE_RESP: &str = r#"
    4d5347 46 40000000 // MSG, F, size 64
    04000000 04000000 // channel, token
    0b000000 15000000 // sequence 11, request id 21
    01 00 a402 // type id 676 WriteResponse
    ac4c9b4f2dd1d501 // timestamp
    16000000 // request handle 22
    00000000 00 ffffffff 000000 // Good, diagnostics, string table, additional header
    01000000 00003480 // 1 result: BadNodeIdUnknown
    ffffffff // diagnostic infos null
"#;

/// Call request (frame 120): object i=85, method ns=1;i=62541, argument "Hello Server".
pub const CALL_REQ: &str = r#"
    4d5347 46 69000000 // MSG, F, size 105
    04000000 04000000 // channel, token
    18000000 18000000 // sequence 24, request id 24
    01 00 c802 // type id 712 CallRequest
    04 0100 3912161546f36d34fecffcbfbacb4c14 // auth token
    9279ba4f2dd1d501 // timestamp
    19000000 // request handle 25
    00000000 ffffffff 00000000 000000 // diagnostics, audit id, timeout, additional header
    01000000 // 1 CallMethodRequest
    00 55 // object i=85
    01 01 4df4 // method ns=1;i=62541
    01000000 0c 0c000000 48656c6c6f20536572766572 // 1 argument: String Hello Server
"#;

/// Call response (frame 122).
pub const CALL_RESP: &str = r#"
    4d5347 46 4c000000 // MSG, F, size 76
    04000000 04000000 // channel, token
    18000000 18000000 // sequence, request id 24
    01 00 cb02 // type id 715 CallResponse
    a095c24f2dd1d501 // timestamp
    19000000 // request handle 25
    00000000 00 ffffffff 000000 // Good, diagnostics, string table, additional header
    01000000 00003480 // 1 result: status BadNodeIdUnknown
    ffffffff ffffffff ffffffff // argument results, their diagnostics, outputs: null
    ffffffff // diagnostic infos null
"#;

/// ActivateSession request with a UserNameIdentityToken (frame 44).
pub const ACTIVATE_REQ: &str = r#"
    4d5347 46 a1000000 // MSG, F, size 161
    04000000 04000000 // channel, token
    04000000 04000000 // sequence 4, request id 4
    01 00 d301 // type id 467 ActivateSessionRequest
    04 0100 3912161546f36d34fecffcbfbacb4c14 // auth token
    c0ec1e4f2dd1d501 // timestamp
    05000000 // request handle 5
    00000000 ffffffff c0270900 000000 // diagnostics, audit id, timeout 600000, additional header
    ffffffff ffffffff // client signature: algorithm null, signature null
    ffffffff // client software certificates null
    ffffffff // locale ids null
    01 00 4401 01 36000000 // identity token: type 324 UserName, binary body of 54 bytes
    19000000 6f70656e36323534312d757365726e616d652d706f6c696379 // policy id
    05000000 7573657231 // user name user1
    08000000 70617373776f7264 // password (never read)
    ffffffff // encryption algorithm null
    ffffffff ffffffff // user token signature
"#;

/// CreateSession request (mainloop frame 40).
pub const CREATE_SESSION_REQ: &str = r#"
    4d5347 46 a6000000 // MSG, F, size 166
    04000000 04000000 // channel, token
    03000000 03000000 // sequence 3, request id 3
    01 00 cd01 // type id 461 CreateSessionRequest
    0000 // auth token i=0
    38be164f2dd1d501 // timestamp
    03000000 // request handle 3
    00000000 ffffffff 10270000 000000 // diagnostics, audit id, timeout 10000, additional header
    1c000000 75726e3a756e636f6e666967757265643a6170706c69636174696f6e // application URI
    ffffffff // product URI null
    00 // application name: empty localized text
    01000000 // application type Client
    ffffffff ffffffff ffffffff // gateway URI, discovery profile, discovery URLs: null
    ffffffff // server URI null
    18000000 6f70632e7463703a2f2f6c6f63616c686f73743a34383430 // endpoint URL
    ffffffff // session name null
    ffffffff // client nonce null
    ffffffff // client certificate null
    00000000804f3241 // requested session timeout 1200000.0
    ffffff7f // max response message size
"#;

/// ERR: BadInternalError, no reason (ITI capture, frame 43).
pub const ERR: &str = r#"
    455252 46 10000000 // ERR, F, size 16
    00000280 // error BadInternalError
    ffffffff // reason null
"#;

/// GetEndpoints request (mainloop, frame 36).
pub const GET_ENDPOINTS_REQ: &str = r#"
    4d5347 46 5d000000 // MSG, F, size 93
    0400000004000000 // channel 4, token 4
    0200000002000000 // sequence 2, request id 2
    0100ac01 // type id i=428 GetEndpointsRequest
    0000 // auth token: i=0
    3e7a0e4f2dd1d501 // timestamp
    02000000 // request handle 2
    00000000ffffffff10270000000000 // return diagnostics, audit entry id, timeout hint, additional header
    180000006f70632e7463703a2f2f6c6f63616c686f73743a34383430 // endpoint URL "opc.tcp://localhost:4840"
    ffffffff // locale ids: null
    ffffffff // profile URIs: null
"#;

/// GetEndpoints response (frame 38): one endpoint, policy None, two token policies.
pub const GET_ENDPOINTS_RESP: &str = r#"
    4d5347 46 dc010000 // MSG, F, size 476
    0400000004000000 // channel 4, token 4
    0200000002000000 // sequence 2, request id 2
    0100af01 // type id i=431 GetEndpointsResponse
    b8b6164f2dd1d501 // timestamp
    02000000 // request handle 2
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    01000000 // endpoints: 1
    180000006f70632e7463703a2f2f6c6f63616c686f73743a34383430 // [0] endpoint URL "opc.tcp://localhost:4840"
    2000000075726e3a6f70656e36323534312e7365727665722e6170706c69636174696f6e //   server application URI "urn:open62541.server.application"
    14000000687474703a2f2f6f70656e36323534312e6f7267 //   server product URI "http://open62541.org"
    0302000000656e220000006f70656e36323534312d6261736564204f5043205541204170706c69636174696f6e //   server application name: locale "en", text "open62541-based OPC UA Application"
    00000000 //   server application type 0 Server
    ffffffff //   server gateway server URI: null
    ffffffff //   server discovery profile URI: null
    ffffffff //   server discovery URLs: null
    ffffffff //   server certificate: null
    01000000 //   security mode 1 None
    2f000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c696379234e6f6e65 //   security policy URI "http://opcfoundation.org/UA/SecurityPolicy#None"
    02000000 //   user token policies: 2
    1a0000006f70656e36323534312d616e6f6e796d6f75732d706f6c696379 //   [0] policy id "open62541-anonymous-policy"
    00000000 //     token type 0 Anonymous
    ffffffff //     issued token type: null
    ffffffff //     issuer endpoint URL: null
    ffffffff //     security policy URI: null
    190000006f70656e36323534312d757365726e616d652d706f6c696379 //   [1] policy id "open62541-username-policy"
    01000000 //     token type 1 UserName
    ffffffff //     issued token type: null
    ffffffff //     issuer endpoint URL: null
    2f000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c696379234e6f6e65 //     security policy URI "http://opcfoundation.org/UA/SecurityPolicy#None"
    41000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412d50726f66696c652f5472616e73706f72742f75617463702d756173632d756162696e617279 //   transport profile URI "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"
    01 //   security level 1
"#;

/// CreateSession response (frame 42).
pub const CREATE_SESSION_RESP: &str = r#"
    4d5347 46 42020000 // MSG, F, size 578
    0400000004000000 // channel 4, token 4
    0300000003000000 // sequence 3, request id 3
    0100d001 // type id i=464 CreateSessionResponse
    56e81e4f2dd1d501 // timestamp
    03000000 // request handle 3
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    040100a0f7639b18fd8d0a5235f3cff51fd1dd // session id: ns=1;g=a0f7639b18fd8d0a5235f3cff51fd1dd
    0401003912161546f36d34fecffcbfbacb4c14 // authentication token: ns=1;g=3912161546f36d34fecffcbfbacb4c14
    00000000804f3241 // revised session timeout 1200000.0
    20000000598c5f8b8e16dbf2e5d02c5219ad6efbf5eb08dc590a17242c167432ee3a0d82 // server nonce (32 bytes)
    ffffffff // server certificate: null
    01000000 // endpoints: 1
    180000006f70632e7463703a2f2f6c6f63616c686f73743a34383430 // [0] endpoint URL "opc.tcp://localhost:4840"
    2000000075726e3a6f70656e36323534312e7365727665722e6170706c69636174696f6e //   server application URI "urn:open62541.server.application"
    14000000687474703a2f2f6f70656e36323534312e6f7267 //   server product URI "http://open62541.org"
    0302000000656e220000006f70656e36323534312d6261736564204f5043205541204170706c69636174696f6e //   server application name: locale "en", text "open62541-based OPC UA Application"
    00000000 //   server application type 0 Server
    ffffffff //   server gateway server URI: null
    ffffffff //   server discovery profile URI: null
    ffffffff //   server discovery URLs: null
    ffffffff //   server certificate: null
    01000000 //   security mode 1 None
    2f000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c696379234e6f6e65 //   security policy URI "http://opcfoundation.org/UA/SecurityPolicy#None"
    02000000 //   user token policies: 2
    1a0000006f70656e36323534312d616e6f6e796d6f75732d706f6c696379 //   [0] policy id "open62541-anonymous-policy"
    00000000 //     token type 0 Anonymous
    ffffffff //     issued token type: null
    ffffffff //     issuer endpoint URL: null
    ffffffff //     security policy URI: null
    190000006f70656e36323534312d757365726e616d652d706f6c696379 //   [1] policy id "open62541-username-policy"
    01000000 //     token type 1 UserName
    ffffffff //     issued token type: null
    ffffffff //     issuer endpoint URL: null
    2f000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c696379234e6f6e65 //     security policy URI "http://opcfoundation.org/UA/SecurityPolicy#None"
    41000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412d50726f66696c652f5472616e73706f72742f75617463702d756173632d756162696e617279 //   transport profile URI "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"
    01 //   security level 1
    ffffffff // server software certificates: null
    ffffffff // server signature algorithm: null
    ffffffff // server signature: null
    00000000 // max request message size 0
"#;

/// ActivateSession response (frame 46).
pub const ACTIVATE_RESP: &str = r#"
    4d5347 46 60000000 // MSG, F, size 96
    0400000004000000 // channel 4, token 4
    0400000004000000 // sequence 4, request id 4
    0100d601 // type id i=470 ActivateSessionResponse
    fa31274f2dd1d501 // timestamp
    05000000 // request handle 5
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    20000000af823f28a4fd9fda7a4a82598c36a432fb0138ce7ca1f5d7b07e994f74aa2c0e // server nonce (32 bytes)
    ffffffff // results: null
    ffffffff // diagnostic infos: null
"#;

/// Browse request (frame 48).
pub const BROWSE_REQ: &str = r#"
    4d5347 46 71000000 // MSG, F, size 113
    0400000004000000 // channel 4, token 4
    0500000005000000 // sequence 5, request id 5
    01000f02 // type id i=527 BrowseRequest
    0401003912161546f36d34fecffcbfbacb4c14 // auth token: ns=1;g=3912161546f36d34fecffcbfbacb4c14
    f03b274f2dd1d501 // timestamp
    06000000 // request handle 6
    00000000ffffffff00000000000000 // return diagnostics, audit entry id, timeout hint, additional header
    0000 // view id: i=0
    0000000000000000 // view timestamp
    00000000 // view version 0
    00000000 // max references per node 0
    01000000 // nodes to browse: 1
    0055 // [0] node id: i=85
    00000000 //   browse direction 0 Forward
    0000 //   reference type: i=0
    00 //   include subtypes 0
    00000000 //   node class mask 0
    3f000000 //   result mask 63
"#;

/// Browse response (frame 50).
pub const BROWSE_RESP: &str = r#"
    4d5347 46 1d010000 // MSG, F, size 285
    0400000004000000 // channel 4, token 4
    0500000005000000 // sequence 5, request id 5
    01001202 // type id i=530 BrowseResponse
    0c272f4f2dd1d501 // timestamp
    06000000 // request handle 6
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    01000000 // results: 1
    00000000 // [0] status Good
    ffffffff //   continuation point: null
    04000000 //   references: 4
    0028 //   ref type: i=40 HasTypeDefinition
    01 //     forward 1
    003d //     target: i=61
    00000a000000466f6c64657254797065 //     browse name: ns 0, "FolderType"
    03000000000a000000466f6c64657254797065 //     display name: locale "", text "FolderType"
    08000000 //     node class 8 ObjectType
    0000 //     type definition: i=0
    0023 //   ref type: i=35 Organizes
    01 //     forward 1
    0100cd08 //     target: i=2253
    000006000000536572766572 //     browse name: ns 0, "Server"
    030000000006000000536572766572 //     display name: locale "", text "Server"
    01000000 //     node class 1 Object
    0100d407 //     type definition: i=2004
    0023 //   ref type: i=35 Organizes
    01 //     forward 1
    010150e3 //     target: ns=1;i=58192
    01000c00000054686547726561744e6f6465 //     browse name: ns 1, "TheGreatNode"
    0305000000656e2d55530f0000005468654e657747726561744e6f6465 //     display name: locale "en-US", text "TheNewGreatNode"
    01000000 //     node class 1 Object
    0101662f //     type definition: ns=1;i=12134
    0023 //   ref type: i=35 Organizes
    01 //     forward 1
    010135d2 //     target: ns=1;i=53813
    00000c0000005661726961626c654e6f6465 //     browse name: ns 0, "VariableNode"
    0305000000656e2d5553120000005468654e65775661726961626c654e6f6465 //     display name: locale "en-US", text "TheNewVariableNode"
    02000000 //     node class 2 Variable
    003f //     type definition: i=63
    ffffffff // diagnostic infos: null
"#;

/// CreateMonitoredItems request (frame 60).
pub const CREATE_MONITORED_ITEMS_REQ: &str = r#"
    4d5347 46 8d000000 // MSG, F, size 141
    0400000004000000 // channel 4, token 4
    0800000008000000 // sequence 8, request id 8
    0100ef02 // type id i=751 CreateMonitoredItemsRequest
    0401003912161546f36d34fecffcbfbacb4c14 // auth token: ns=1;g=3912161546f36d34fecffcbfbacb4c14
    ac803f4f2dd1d501 // timestamp
    09000000 // request handle 9
    00000000ffffffff00000000000000 // return diagnostics, audit entry id, timeout hint, additional header
    01000000 // subscription id 1
    02000000 // timestamps to return 2 Neither
    01000000 // items to create: 1
    0301000a0000007468652e616e73776572 // [0] node id: ns=1;s=the.answer
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    02000000 //   monitoring mode 2 Reporting
    01000000 //   client handle 1
    0000000000406f40 //   sampling interval 250.0
    000000 //   filter: none
    01000000 //   queue size 1
    01 //   discard oldest 1
"#;

/// CreateMonitoredItems response (frame 62).
pub const CREATE_MONITORED_ITEMS_RESP: &str = r#"
    4d5347 46 53000000 // MSG, F, size 83
    0400000004000000 // channel 4, token 4
    0800000008000000 // sequence 8, request id 8
    0100f202 // type id i=754 CreateMonitoredItemsResponse
    8676474f2dd1d501 // timestamp
    09000000 // request handle 9
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    01000000 // results: 1
    00003480 // [0] status 0x80340000 BadNodeIdUnknown
    00000000 //   monitored item id 0
    0000000000000000 //   revised sampling interval 0.0
    00000000 //   revised queue size 0
    000000 //   filter result: none
    ffffffff // diagnostic infos: null
"#;

/// Publish request (with-gap capture, frame 93).
pub const PUBLISH_REQ: &str = r#"
    4d5347 46 62000000 // MSG, F, size 98
    0d00000001000000 // channel 13, token 1
    2000000020000000 // sequence 32, request id 32
    01003a03 // type id i=826 PublishRequest
    05000020000000ab28541b6afdf93a4703a5f287190cd8d7f50d7ec3aa739ed5bc828bb497478d // auth token: b=ab28541b6afdf93a4703a5f287190cd8d7f50d7ec3aa739ed5bc828bb497478d
    785ab9f2b742d801 // timestamp
    5f420f00 // request handle 1000031
    00000000ffffffff60ea0000000000 // return diagnostics, audit entry id, timeout hint, additional header
    ffffffff // subscription acknowledgements: null
"#;

/// Read request of server properties (with-gap capture, frame 35).
pub const READ_SERVER_REQ: &str = r#"
    4d5347 46 c4010000 // MSG, F, size 452
    0d00000001000000 // channel 13, token 1
    0500000005000000 // sequence 5, request id 5
    01007702 // type id i=631 ReadRequest
    05000020000000ab28541b6afdf93a4703a5f287190cd8d7f50d7ec3aa739ed5bc828bb497478d // auth token: b=ab28541b6afdf93a4703a5f287190cd8d7f50d7ec3aa739ed5bc828bb497478d
    80611ef2b742d801 // timestamp
    44420f00 // request handle 1000004
    00000000ffffffff88130000000000 // return diagnostics, audit entry id, timeout hint, additional header
    0000000000000000 // max age 0.0
    03000000 // timestamps to return 3 Both
    13000000 // nodes to read: 19
    0100cf08 // [0] node id: i=2255
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100af0a // [1] node id: i=2735
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    01006f32 // [2] node id: i=12911
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100b10a // [3] node id: i=2737
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100b00a // [4] node id: i=2736
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100b72d // [5] node id: i=11703
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100e008 // [6] node id: i=2272
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100c22d // [7] node id: i=11714
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100be2d // [8] node id: i=11710
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100852f // [9] node id: i=12165
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100862f // [10] node id: i=12166
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100872f // [11] node id: i=12167
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100882f // [12] node id: i=12168
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100bd2d // [13] node id: i=11709
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100c12d // [14] node id: i=11713
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100bf2d // [15] node id: i=11711
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100c02d // [16] node id: i=11712
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100bb2d // [17] node id: i=11707
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
    0100d308 // [18] node id: i=2259
    0d000000 //   attribute 13 Value
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
"#;

/// Read response (frame 36): namespace array and limits, the rest unknown.
pub const READ_SERVER_RESP: &str = r#"
    4d5347 46 2e010000 // MSG, F, size 302
    0d00000001000000 // channel 13, token 1
    0304000005000000 // sequence 1027, request id 5
    01007a02 // type id i=634 ReadResponse
    00a98f7ab742d801 // timestamp
    44420f00 // request handle 1000004
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    13000000 // results: 19
    018c05000000 // [0]: mask 0x01, Array of String, 5 elements
    1c000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f //   [0] "http://opcfoundation.org/UA/"
    1500000075726e3a30303a30363a37313a33333a30353a3032 //   [1] "urn:00:06:71:33:05:02"
    1400000075726e3a5369656d656e735632746f4f50435541 //   [2] "urn:SiemensV2toOPCUA"
    1000000075726e3a53797374656d5f6974656d73 //   [3] "urn:System_items"
    24000000687474703a2f2f7777772e736f6674696e672e636f6d2f4f504355415f546f6f6c6b6974 //   [4] "http://www.softing.com/OPCUA_Toolkit"
    01056400 // [1]: mask 0x01, UInt16 100
    010700000000 // [2]: mask 0x01, UInt32 0
    01056400 // [3]: mask 0x01, UInt16 100
    01050a00 // [4]: mask 0x01, UInt16 10
    010700000000 // [5]: mask 0x01, UInt32 0
    010b0000000000000000 // [6]: mask 0x01, Double 0.0
    0200003480 // [7]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [8]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [9]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [10]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [11]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [12]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [13]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [14]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [15]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [16]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    0200003480 // [17]: mask 0x02, status 0x80340000 BadNodeIdUnknown
    010600000000 // [18]: mask 0x01, Int32 0
    ffffffff // diagnostic infos: null
"#;

/// A polling Read request (frame 40).
pub const READ_POLL_REQ: &str = r#"
    4d5347 46 a2000000 // MSG, F, size 162
    0d00000001000000 // channel 13, token 1
    0700000007000000 // sequence 7, request id 7
    01007702 // type id i=631 ReadRequest
    05000020000000ab28541b6afdf93a4703a5f287190cd8d7f50d7ec3aa739ed5bc828bb497478d // auth token: b=ab28541b6afdf93a4703a5f287190cd8d7f50d7ec3aa739ed5bc828bb497478d
    29716ff2b742d801 // timestamp
    46420f00 // request handle 1000006
    00000000ffffffff10270000000000 // return diagnostics, audit entry id, timeout hint, additional header
    0000000000000000 // max age 0.0
    02000000 // timestamps to return 2 Neither
    01000000 // nodes to read: 1
    0302001f0000007370732d322e44422e4f50435f55412e536974655f4d45535f646f536f7274 // [0] node id: ns=2;s=sps-2.DB.OPC_UA.Site_MES_doSort
    11000000 //   attribute 17 AccessLevel
    ffffffff //   index range: null
    0000ffffffff //   data encoding: ns 0, null name
"#;

/// Its response (frame 41).
pub const READ_POLL_RESP: &str = r#"
    4d5347 46 47000000 // MSG, F, size 71
    0d00000001000000 // channel 13, token 1
    0504000007000000 // sequence 1029, request id 7
    01007a02 // type id i=634 ReadResponse
    225de17ab742d801 // timestamp
    46420f00 // request handle 1000006
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    01000000 // results: 1
    090303085ce17ab742d801 // [0]: mask 0x09, Byte 3, server timestamp
    ffffffff // diagnostic infos: null
"#;

/// Publish response with a DataChangeNotification of 23 items (with-gap capture, frame 96).
pub const PUBLISH_RESP: &str = r#"
    4d5347 46 84020000 // MSG, F, size 644
    0d00000001000000 // channel 13, token 1
    1e04000020000000 // sequence 1054, request id 32
    01003d03 // type id i=829 PublishResponse
    a08e367bb742d801 // timestamp
    5f420f00 // request handle 1000031
    00000000 // service result Good
    00ffffffff000000 // diagnostic info empty, string table null, additional header
    ab28541b // subscription id 458500267
    01000000 // available sequence numbers: 1
    01000000 //   1
    00 // more notifications 0
    01000000 // notification sequence 1
    c689367bb742d801 // publish time
    01000000 // notification data: 1
    01002b030122020000 // [0] extension object i=811, binary body of 546 bytes
    17000000 //   monitored items: 23
    06000000 //   client handle 6
    0d01004281c45ab542d80161b6c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    05000000 //   client handle 5
    0d0401007080c45ab542d8014cb4c45ab542d801 //     value: mask 0x0d, Int16 1, source timestamp, server timestamp
    04000000 //   client handle 4
    0d040000a87fc45ab542d80126b2c45ab542d801 //     value: mask 0x0d, Int16 0, source timestamp, server timestamp
    0f000000 //   client handle 15
    0d01004489c45ab542d80140c7c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    0e000000 //   client handle 14
    0d01002288c45ab542d8013ec5c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    0d000000 //   client handle 13
    0d040000f686c45ab542d8011bc3c45ab542d801 //     value: mask 0x0d, Int16 0, source timestamp, server timestamp
    18000000 //   client handle 24
    0d01005695c45ab542d801bbdec45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    03000000 //   client handle 3
    0d040000e07ec45ab542d801ecafc45ab542d801 //     value: mask 0x0d, Int16 0, source timestamp, server timestamp
    02000000 //   client handle 2
    0d0400002c7ec45ab542d80192adc45ab542d801 //     value: mask 0x0d, Int16 0, source timestamp, server timestamp
    01000000 //   client handle 1
    0d0402001e7dc45ab542d80126a8c45ab542d801 //     value: mask 0x0d, Int16 2, source timestamp, server timestamp
    17000000 //   client handle 23
    0d0100d093c45ab542d80150dcc45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    16000000 //   client handle 22
    0d01005e92c45ab542d801a2d5c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    15000000 //   client handle 21
    0d0100ec90c45ab542d8019dd3c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    14000000 //   client handle 20
    0d0100988fc45ab542d8019ad1c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    13000000 //   client handle 19
    0d0100448ec45ab542d8018acfc45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    12000000 //   client handle 18
    0d0100f08cc45ab542d80180cdc45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    11000000 //   client handle 17
    0d04ae00b08bc45ab542d80163cbc45ab542d801 //     value: mask 0x0d, Int16 174, source timestamp, server timestamp
    10000000 //   client handle 16
    0d01007a8ac45ab542d8014ac9c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    08000000 //   client handle 8
    0d0400000e83c45ab542d801c4bac45ab542d801 //     value: mask 0x0d, Int16 0, source timestamp, server timestamp
    07000000 //   client handle 7
    0d01003282c45ab542d801aeb8c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    0c000000 //   client handle 12
    0d0100de85c45ab542d80112c1c45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    0b000000 //   client handle 11
    0d041000e484c45ab542d801fdbec45ab542d801 //     value: mask 0x0d, Int16 16, source timestamp, server timestamp
    0a000000 //   client handle 10
    0d0100fe83c45ab542d801e3bcc45ab542d801 //     value: mask 0x0d, Boolean false, source timestamp, server timestamp
    ffffffff //   diagnostic infos: null
    ffffffff // results: null
    ffffffff // diagnostic infos: null
"#;

/// OPN request, Basic128Rsa15 (open62541 client-server_encrypted capture, frame 31):
/// the client's certificate and the SHA-1 thumbprint of the server's.
pub const OPN_ENCRYPTED_REQ: &str = r#"
    4f504e 46 45060000 // OPN, F, size 1605
    00000000 // secure channel id 0
    38000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c6963792342617369633132385273613135 // policy URI ...#Basic128Rsa15
    e1030000 // sender certificate: 993 bytes
    308203dd308202c5a003020102020900d3fa02037416b875300d06092a864886f70d01010b05003045310b300906035504061302444531123010060355040a0c096f70656e36323534313122302006035504030c196f70656e3632353431536572766572406c6f63616c686f7374301e170d3230303132303230333232345a170d3231303131393230333232345a3045310b300906035504061302444531123010060355040a0c096f70656e36323534313122302006035504030c196f70656e3632353431536572766572406c6f63616c686f737430820122300d06092a864886f70d01010105000382010f003082010a0282010100bad1cae0df5d755473f1f27ec37393e9659c7400a478e0ac975a1d611e6d9ea923ae06e94d090897004d08059c124a85ba49709551598c65a51878779e22ec5927e533f4209e1b555fcf1719424e8daac3107f69a2f668a62a4ff4e7c19a03e9642038d6a342bdc0cda22b03d9809cba81e03b15a3d756b8d14e445e6148e0831a84dd229a37c3d26c791b540dbef177e45048f8b749975234ce699d8bf495e47221d09280bad8f14c7009d6a6947c50d651e375a538755ed876d5d850d093cdce9293e5f9551ff6608fbbbc42692deaee8ec043bdda7c03013a7321bdea7c773ad04c890d3901060e5fe952f055ef55465fe4c4a0c0c80e4a402917ab307d6d0203010001a381cf3081cc301d0603551d0e04160414382fe5c60265130557e194eecbbcd0d10b872aac301f0603551d23041830168014382fe5c60265130557e194eecbbcd0d10b872aac30090603551d1304023000300b0603551d0f0404030202f4301d0603551d250416301406082b0601050507030106082b0601050507030230530603551d11044c304a820e6561676c65726f636b2d35313530820e6561676c65726f636b2d353135308704ac100a8f87047f000001861c75726e3a756e636f6e666967757265643a6170706c69636174696f6e300d06092a864886f70d01010b050003820101008a62b6bcd958e38f6786e70e94f35672b2f4b096c247b7cd33b84c66a0adc7ee5014c6685efa873b6feebe0d857b295796899d027f0141f1f87ce3107f71a2bcd3461baf8f6bd88ed4e85ca2a38119c86b3a19bd2b9c776f1b12bdfcb21ce15b72a8e82c98db6c9ceb08c07b41cac3b6412e4f0c6ec8691d79db62801697c6eaf7a2fe8ddbb5998233ec15a9228b129f4b6a63a18c2c11a70e65486ec540018f493e4eea99fe5ce8c972c041c045aaf7c8822eb157d8527034d4a7c33755ffa4d6ed8dd05c6c9ecb090236f4d7d6b17b977c486877f4901030faf965906cf388d783b9f54b0d97a63246d7c9e70e275f4af9973dd0fcedc4ca549d2b91b58abf // DER certificate: SEQUENCE (30 82), 989 bytes
    1400000002ef7d93ab6cbb3a6f9c202307188ddf171ec991 // receiver thumbprint (20 bytes)
    ace6ec042192a34bd5fc230f35db48ee56556d4f2bb8702f3b6f2ee848a2e8be1a38018ddbb8302f9365e03a449150919b38d15c8c45926472c4f0cd628d9048beed96c28c25fa9b12c373d572b2f60b2921869e596cfb4b633d7eede5620dcc56fc5285370fda374f8575b158f672e52036ec5b80abf2156e8c1afcc28909cdbb4109ffd6e0dafe538bc037ef9818b0f3e7b3ed03cb347b2d3c1cd79c3daea0c455d0c20ab9b18e3f4f2b2b2cc58671614bc1569be0b57948c98ec58baffd19bec6b9aaec7dbcb00d19e191cc4342c199897621da8bd945b6ce017c53a08a249548ec77cc2deb2e86797e577a3b06949eb6b459df75a46dfd8bd7321c769194b431d5774c0bc7532e0002e5d3153abeecda8d0b58c7417cfa5d268663174fb6eaed2bc18f2e2ff2dc4af19dc088ba796e4f9ef423f4b48c1d8e637a74602185c68827562938dc2f2a296237d2edb947318cb2fb561026ad94120ab34ca00160c27e1dafa10517b562a2c700073ebe7543acdd7060028c7f2fbeb04e999ce79fd3e867ceb132199a3f4bb7eabf29d2956e61c885b18a3a1b9fd4143064d2a9195ffc0cbceaf47dc7814081151330ef00ce2a44c86e63bf89d2a8ebf5dc60575ee615067c535d0ed28e794516ac9fcf4b489b59b805467308458120e6a90f176624ecabd4ecd0ddc66363fb778ba0a1e72215ec8911d653b9b84cb40a71c03692 // encrypted sequence header, body, padding, signature (512 bytes)
"#;

/// OPN response (frame 33): the server's certificate and the thumbprint of the client's.
pub const OPN_ENCRYPTED_RESP: &str = r#"
    4f504e 46 49060000 // OPN, F, size 1609
    02000000 // secure channel id 2
    38000000687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c6963792342617369633132385273613135 // policy URI ...#Basic128Rsa15
    e5030000 // sender certificate: 997 bytes
    308203e1308202c9a003020102020900c16484f0a42b5f03300d06092a864886f70d01010b05003045310b300906035504061302444531123010060355040a0c096f70656e36323534313122302006035504030c196f70656e3632353431536572766572406c6f63616c686f7374301e170d3230303132303138353231315a170d3231303131393138353231315a3045310b300906035504061302444531123010060355040a0c096f70656e36323534313122302006035504030c196f70656e3632353431536572766572406c6f63616c686f737430820122300d06092a864886f70d01010105000382010f003082010a0282010100b85064379d96461bdbb44a90f1de35785156d318d7b34e6c08a252624cbe7f448390ca5f121086734a1974e535791a9c9dd8aec9368a7e9dc5e52f5bd2ffbd43c5fdaa43dc8b9d4515df8d19b01d43d9e62183bd224fda1dd3fcd367258b5ee0bb35bafa1fd5712cc9a8b44b3edd145d1076438c9aefae107fdbc2371c4f722aba3376bb828ec950b7a0830b7b99600965921a2ed48aca4b76ebf415a779310491e56519886274a2a3af5d293bfdb97a2e459e98ae71d5921cacb1431f447bf716bed8d327446327834b36c86d7df3aaf0ba84fcf307e9e1b8d9cc4c8da76d508fa1215c11b6f544b2fc901ee485097d190a4f4baeb642697ba2b459348695750203010001a381d33081d0301d0603551d0e04160414320fb94fafcf4c473e45d6776504706d48f81bf1301f0603551d23041830168014320fb94fafcf4c473e45d6776504706d48f81bf130090603551d1304023000300b0603551d0f0404030202f4301d0603551d250416301406082b0601050507030106082b0601050507030230570603551d110450304e820e6561676c65726f636b2d35313530820e6561676c65726f636b2d353135308704ac100a8f87047f000001862075726e3a6f70656e36323534312e7365727665722e6170706c69636174696f6e300d06092a864886f70d01010b050003820101007bef4bbfb4da9a1240a377aebca9760ce14cb1c9466b31a84e800788788bf11ef809c5036c9334b0061595195c87595ebcd14819cb74c80f0d3c92475bface1c5632e10f1ec0b793ffd755e45bfcc8e16c649e99b7d4ad0704be0fcbed1ff6b7d097f3c9befe0ac85bbc46088dd8426e84860de9fa77547194d6d3762bb72c4c8412f8dc297bfcccb9a7b22cdd26eec7f157b0a9ced82c252304b13a1e5022de268aab595464de3f34eb3f214a38da7efba0800fc9f18d6e601b48cb2a4d5005f7a5850728d8ff27f6eee399fef4f2da22fc1546998aeaf52bf27a081b6f51ad5139c944001d92d25fb7c2c8a862ed5b8eecc1a0ff63d69453f07e0ef44c15df // DER certificate: SEQUENCE (30 82), 993 bytes
    1400000085ef235574b9ee5b514de6d99728bfc880cc7d5c // receiver thumbprint (20 bytes)
    9c9ba887cdcefd9efcaf8b068aa4b16cf2567c819fd8bc9af172b7792c25fff3fa30ef3fdb2e87bf4ef1517f5c8c6544ad38b2d50687eb10c36c669fa4a66ccd2a278485a8068e4f350385775c2a303c78a1e1ab775275247a27d824129c820a58687ba992e1ea614d50377a1ca0739d00d7e29703faa65cbaa3285b46156c96fca8cc58ee52fecbd334b1b0b60faa355c8f44bfb056bebf24bbabe0bed82d2584a52e84a33746713f87ea785a9d13a4db36efb588edaca083dc04236e3db42600ec652102ba751e468fef1a420eaf0b25836e537a89d06cd1d4e1de244013aafe87695dc33a63a549e1102e6788d57ef92d3d7293de8c3ffb362d80425b771e354324337ab7caa7b225deb3fc8bc43bd4a310f2ca33db070f81abaf4cac69e2b7b7a671f430a4962e77d91dc7cfeeb19be6c95418c747fc9d16f7dfc216bfab967cf88d8f07de721c44a2eb8777e3d93ac773dadf106d1a2f5ddfa13d14ccd6c3bb386f805fcf586e441470264a1b14da090ef604ae60aec904287581e557299dd43974b6698517aad1a894179c6b8b61914b6e2d063fd80d5659a40c1131bb4030fcf1a92965fd6a8382bc4e2fbac554959f8326f36fa5ba1a669a4a8af70000efbbbd627154ba5abfd5ef4f2c404e93e20778822da4c6c83023e7568e0644d156760d76eaa54638894b415e6e5f07a60302718e4d5f19d50a7e39113eeff8 // encrypted sequence header, body, padding, signature (512 bytes)
"#;
