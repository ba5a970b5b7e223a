"""(being written this session)"""
import streamlit as st

st.title("compare")
