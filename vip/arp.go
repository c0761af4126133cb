package vip

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// GratuitousARP is the Ethernet frame announcing that addr is at mac: an
// ARP request for addr from addr (RFC 5227 announcement), broadcast.
func GratuitousARP(mac net.HardwareAddr, addr netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], unix.ETH_P_ARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:4], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], 1) // request
	ip := addr.As4()
	copy(a[8:14], mac)
	copy(a[14:18], ip[:])
	// target hardware address stays zero
	copy(a[24:28], ip[:])
	return f
}

// Announce sends count gratuitous ARPs for addr on nic, 100 ms apart.
func Announce(nic *net.Interface, addr netip.Addr, count int) error {
	if len(nic.HardwareAddr) != 6 {
		return fmt.Errorf("%s has no Ethernet address", nic.Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous ARP on %s: %w", nic.Name, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: nic.Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	frame := GratuitousARP(nic.HardwareAddr, addr)
	for i := 0; i < count; i++ {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", nic.Name, err)
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
