"""(being written this session)"""
import streamlit as st

st.title("rule_lab")
