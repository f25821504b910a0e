# Writes tests/data/suricata/unsolicited.pcap: one Modbus/TCP connection in which the server
# sends two responses nobody asked for (a register write echo and a coil write echo) between
# ordinary transactions. Suricata 7 matches such response-only transactions on the response;
# tests/suricata_rules.rs checks otwatch does the same. Run: python3 make_unsolicited.py
import struct
C, S = bytes([127,0,0,5]), bytes([127,0,0,6])
CP, SP = 40123, 502
recs = []
t = [1_700_000_000, 0]
seq = {'c': 1000, 's': 5000}
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def pkt(frm, flags, payload=b''):
    src, dst, sp, dp = (C, S, CP, SP) if frm == 'c' else (S, C, SP, CP)
    other = 's' if frm == 'c' else 'c'
    tcp = struct.pack('!HHIIBBHHH', sp, dp, seq[frm], seq[other], 5 << 4, flags, 65535, 0, 0) + payload
    ph = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(ph + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    eth = b'\0' * 12 + b'\x08\x00'
    data = eth + ip + tcp
    t[1] += 1000
    recs.append(struct.pack('<IIII', t[0], t[1], len(data), len(data)) + data)
    seq[frm] += len(payload) + (1 if flags & 0x03 else 0)
def mbap(tid, unit, pdu):
    return struct.pack('!HHHB', tid, 0, len(pdu) + 1, unit) + pdu
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
pkt('c', SYN); seq['s'] -= 0
pkt('s', SYN | ACK); pkt('c', ACK)
pkt('c', PSH | ACK, mbap(1, 1, bytes([3, 0, 9, 0, 2])))               # read holding wire 9, 2 regs
pkt('s', PSH | ACK, mbap(1, 1, bytes([3, 4, 0, 1, 0, 2])))
pkt('c', ACK)
pkt('s', PSH | ACK, mbap(99, 7, bytes([6, 0, 41, 0x01, 0x2c])))       # unsolicited: write reg wire 41 = 300
pkt('c', ACK)
pkt('s', PSH | ACK, mbap(98, 7, bytes([5, 0, 3, 0xff, 0])))           # unsolicited: coil wire 3 on
pkt('c', ACK)
pkt('c', PSH | ACK, mbap(2, 1, bytes([6, 0, 41, 0, 5])))              # write reg wire 41 = 5
pkt('s', PSH | ACK, mbap(2, 1, bytes([6, 0, 41, 0, 5])))
pkt('c', ACK)
pkt('c', FIN | ACK); pkt('s', FIN | ACK); pkt('c', ACK)
with open(__file__.rsplit('/', 1)[0] + '/unsolicited.pcap' if '/' in __file__ else 'unsolicited.pcap', 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    f.writelines(recs)
