// approxmlp primitive: the rescale of a linear (output-layer) neuron, as the argmax sees it.
//
//   out = ((acc >>> SHIFT) >>> DROP) <<< DROP, in OUT_W signed bits
//
// SHIFT is the layer's rescale, DROP the low bits the argmax ignores (an approximation;
// 0 when exact). The caller guarantees that the result fits in OUT_W bits and that
// DROP < OUT_W (a result of DROP or more dropped bits is its sign and DROP zeros).
// A design reads the whole accumulator through this port; the bits the function does not
// need are tied to `unused_wide`, which Verilator's default `--unused-regexp` exempts and
// synthesis removes.
//
// Hand-written and reviewed: generated designs instantiate it with named parameters and
// carry a copy in their rtl/ folder. Tested by sim/test_primitives.py.
`default_nettype none

module approxmlp_rescale #(
    parameter integer ACC_W = 8,  // signed accumulator width
    parameter integer SHIFT = 0,  // rescale: acc >>> SHIFT
    parameter integer DROP  = 0,  // low result bits cleared
    parameter integer OUT_W = 8   // signed result width, > DROP
) (
    input  wire signed [ACC_W-1:0] acc,
    output wire signed [OUT_W-1:0] out
);

    localparam integer TOP  = SHIFT + OUT_W;                // first bit above the result
    localparam integer WIDE = TOP > ACC_W ? TOP : ACC_W;

    wire [WIDE-1:0] wide;  // acc, sign-extended to reach bit TOP-1

    generate
        if (WIDE > ACC_W) begin : g_extend
            assign wide = {{(WIDE-ACC_W){acc[ACC_W-1]}}, acc};
        end else begin : g_fits
            assign wide = acc;
        end
        if (DROP > 0) begin : g_drop
            assign out = {wide[TOP-1:SHIFT+DROP], {DROP{1'b0}}};
        end else begin : g_keep
            assign out = wide[TOP-1:SHIFT];
        end
    endgenerate

    wire unused_wide = ^wide;  // see the header: every bit counts as read

endmodule

`default_nettype wire
