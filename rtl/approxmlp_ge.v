// approxmlp primitive: the comparator of an argmax tree node, a >= b.
//
// The left operand (the lower class index) wins a tie, so the tree keeps the lower index.
// The operands may differ in width and are compared as numbers (SIGNED: two's complement,
// else unsigned); the narrower is extended here, so that the design needs no padding. The
// argmax approximation (ignored low score bits) is already in the scores it compares.
//
// Hand-written and reviewed: generated designs instantiate it with named parameters and
// carry a copy in their rtl/ folder. Tested by sim/test_primitives.py.
`default_nettype none

module approxmlp_ge #(
    parameter integer A_W    = 8,  // width of a
    parameter integer B_W    = 8,  // width of b
    parameter integer SIGNED = 0   // 1: two's complement operands
) (
    input  wire [A_W-1:0] a,
    input  wire [B_W-1:0] b,
    output wire           ge  // a >= b
);

    localparam integer W = A_W > B_W ? A_W : B_W;

    wire [W-1:0] ax;  // a, extended to W bits
    wire [W-1:0] bx;  // b, extended to W bits

    generate
        if (A_W < W) begin : g_extend_a
            assign ax = {{(W-A_W){SIGNED != 0 && a[A_W-1]}}, a};
        end else begin : g_a
            assign ax = a;
        end
        if (B_W < W) begin : g_extend_b
            assign bx = {{(W-B_W){SIGNED != 0 && b[B_W-1]}}, b};
        end else begin : g_b
            assign bx = b;
        end
        if (SIGNED != 0) begin : g_signed
            assign ge = $signed(ax) >= $signed(bx);
        end else begin : g_unsigned
            assign ge = ax >= bx;
        end
    endgenerate

endmodule

`default_nettype wire
