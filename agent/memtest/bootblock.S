# vt memtest: a boot-sector guest that proves live migration lost no memory.
#
# SeaBIOS loads this sector at 0x7c00 in real mode. It enables A20, switches to 32-bit protected mode with a
# flat GDT, then:
#   1. writes 'A' to COM1 (0x3f8);
#   2. initialises every 4 KiB page of [start, end): byte 0 (the counter) = 0, bytes 4..7 = the page's own
#      physical address (a tag that catches pages migrated to the wrong place), bytes 8..11 = 0;
#   3. loops forever: one pass increments the counter byte of every page in order, then the 32-bit count of
#      finished passes in bytes 8..11 of the first page (a guest booted afresh restarts it at 0, one that
#      migrated carries it on), then writes 'B' to COM1.
# Stopped at any instant, every page's counter equals the first page's, except that pages after the point the
# pass had reached are one less. src/migration/integrity.ts checks exactly that.
#
# The range lives in a parameter block at offset 0x1f0 ('VTMT', start, end) that the image builder patches to
# the guest's memory size. Assemble with scripts in agent/memtest/assemble.ts (GNU as + ld).

        .code16
        .text
        .globl  _start
_start:
        cli
        cld
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss

        # Fast A20 gate (port 0x92, bit 1); keep bit 0 clear, it resets the machine.
        inb     $0x92, %al
        orb     $0x02, %al
        andb    $0xfe, %al
        outb    %al, $0x92

        lgdtl   gdt_desc
        movl    %cr0, %eax
        orl     $1, %eax
        movl    %eax, %cr0
        ljmpl   $0x08, $protected

        .code32
protected:
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss

        movw    $0x3f8, %dx
        movb    $'A', %al
        outb    %al, %dx

        movl    range_start, %esi
        movl    range_end, %edi

        # Initial pass: counter 0 and address tag in every page.
        movl    %esi, %eax
init:
        movl    $0, (%eax)
        movl    %eax, 4(%eax)
        movl    $0, 8(%eax)
        addl    $4096, %eax
        cmpl    %edi, %eax
        jb      init

pass:
        movl    %esi, %eax
bump:
        incb    (%eax)
        addl    $4096, %eax
        cmpl    %edi, %eax
        jb      bump

        incl    8(%esi)
        movb    $'B', %al
        outb    %al, %dx
        jmp     pass

        # Flat 4 GiB code (0x08) and data (0x10) segments.
        .p2align 3
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff
        .quad   0x00cf92000000ffff
gdt_desc:
        .word   gdt_desc - gdt - 1
        .long   gdt

        # Parameter block, patched by the image builder.
        .org    0x1f0
params:
        .ascii  "VTMT"
range_start:
        .long   0x00100000
range_end:
        .long   0x06400000

        .org    0x1fe
        .byte   0x55, 0xaa
