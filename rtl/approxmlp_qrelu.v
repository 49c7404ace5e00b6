// approxmlp primitive: the saturating QReLU of one neuron, with its rescale and truncation.
//
//   out = clamp(acc >>> SHIFT, 0, 2**SAT_W - 1), low TRUNC bits cleared, its low OUT_W bits
//
// SAT_W is the activation's own width; OUT_W (at most SAT_W, by default equal) is as many
// bits as the next layer reads: when every reader's operand mask clears the top bits, only
// the low bits of the (still correctly saturated) value are built.
// The rescale is a bit slice, the clamp two conditions on accumulator bits. Each side of
// the clamp is built only when the generator's range analysis says it can happen
// (CAN_NEG: acc can be negative; CAN_SAT: acc >>> SHIFT can exceed 2**SAT_W - 1); with a
// side left out, the caller guarantees that case never occurs, so no logic is spent on it.
// A design reads the whole accumulator through this port; the bits the function does not
// need (below SHIFT + TRUNC, and above the output bits when nothing saturates) are tied to
// `unused_acc`, which Verilator's default `--unused-regexp` exempts and synthesis removes.
//
// Hand-written and reviewed: generated designs instantiate it with named parameters and
// carry a copy in their rtl/ folder. Tested by sim/test_primitives.py.
`default_nettype none

module approxmlp_qrelu #(
    parameter integer ACC_W   = 8,  // signed accumulator width
    parameter integer SHIFT   = 0,  // rescale: acc >>> SHIFT
    parameter integer OUT_W   = 4,      // output bits built: the low OUT_W of the value
    parameter integer SAT_W   = OUT_W,  // activation width; saturates at 2**SAT_W - 1
    parameter integer TRUNC   = 0,      // low output bits cleared (approximation)
    parameter integer CAN_NEG = 1,      // 0: the caller guarantees acc >= 0
    parameter integer CAN_SAT = 1       // 0: the caller guarantees acc >>> SHIFT < 2**SAT_W
) (
    input  wire signed [ACC_W-1:0] acc,
    output wire        [OUT_W-1:0] out
);

    localparam integer TOP = SHIFT + OUT_W;                   // first bit above the output
    localparam integer SAT = SHIFT + SAT_W;                   // first bit above the activation
    localparam integer HI  = CAN_NEG != 0 ? ACC_W - 2 : ACC_W - 1;  // highest magnitude bit

    wire [OUT_W-1:0] value;  // bits [TOP-1:SHIFT] of acc, low TRUNC cleared
    wire [OUT_W-1:0] ones;   // the saturation level, low TRUNC cleared
    wire             over;   // acc >>> SHIFT > 2**SAT_W - 1
    wire             under;  // acc < 0

    generate
        if (TRUNC >= OUT_W) begin : g_all_cut
            assign value = {OUT_W{1'b0}};
            assign ones  = {OUT_W{1'b0}};
        end else if (TRUNC > 0) begin : g_cut
            assign value = {acc[TOP-1:SHIFT+TRUNC], {TRUNC{1'b0}}};
            assign ones  = {{(OUT_W-TRUNC){1'b1}}, {TRUNC{1'b0}}};
        end else begin : g_whole
            assign value = acc[TOP-1:SHIFT];
            assign ones  = {OUT_W{1'b1}};
        end
        if (CAN_SAT != 0) begin : g_sat
            assign over = |acc[HI:SAT];
        end else begin : g_no_sat
            assign over = 1'b0;
        end
        if (CAN_NEG != 0) begin : g_neg
            assign under = acc[ACC_W-1];
        end else begin : g_no_neg
            assign under = 1'b0;
        end
    endgenerate

    assign out = under ? {OUT_W{1'b0}} : over ? ones : value;

    wire unused_acc = ^acc;  // see the header: every bit counts as read

endmodule

`default_nettype wire
